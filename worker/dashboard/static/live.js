// Live updates without a build step: every element with data-live="URL" has its content replaced,
// every two seconds, by the HTML that URL returns (the page's live part, rendered by the server).
// Polling pauses while the tab is hidden; a failed request leaves the last content in place.
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function refresh(element) {
    if (document.hidden) { return; }
    fetch(element.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          element.innerHTML = html;
          element.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-live]");
    elements.forEach(function (element) {
      window.setInterval(function () { refresh(element); }, PERIOD_MS);
    });
  });
})();
