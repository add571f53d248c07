"""The dashboard as a real process on a free port, plain HTTP requests to it, and a headless browser.

The browser is Debian's chromium (/usr/bin/chromium, installed by scripts/bootstrap.sh) driven by
Playwright for Python; Playwright's own browser download is never used.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.workers import ROOT

CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, data: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers named in lower case) of a GET, or a POST when `data` is given; redirects are
    not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace"), _lower(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), _lower(exc.headers)


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@contextmanager
def running_dashboard(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Serve `python worker.py dashboard` on a free port; yield its base URL; stop it after."""
    port = free_port()
    env = {**env, "DASHBOARD_HOST": "127.0.0.1", "DASHBOARD_PORT": str(port)}
    with open(log_path, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "dashboard"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start (exit {proc.poll()}):\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _answers(base: str) -> bool:
    try:
        return request(f"{base}/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium for the module's tests (a fresh page per test keeps them apart)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bash scripts/test.sh does when root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page whose JavaScript dialogs (an injected alert()) are recorded in page.dialogs and dismissed."""
    context = browser.new_context()
    tab = context.new_page()
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
