"""HTTP endpoints for orchestrators and Prometheus: /healthz, /readyz and /metrics.

/healthz answers 200 while the daemon's main loop keeps ticking (liveness: restart me if not).
/readyz answers 200 only when the database, storage and ffmpeg all work (readiness), else
503 with the failing checks. /metrics is the Prometheus text format.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from utils.redaction import redact
from worker.errors import ConfigError
from worker.logs import log
from worker.metrics import REGISTRY

LIVENESS_STALE_SECONDS = 30.0

ReadinessCheck = Callable[[], None]
"""Raises with a readable message when its dependency is unusable."""


class HealthState:
    """What the endpoints report: the main loop's last tick and the readiness checks."""

    def __init__(self, checks: dict[str, ReadinessCheck]) -> None:
        self.checks = checks
        self.last_tick = time.monotonic()

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self.last_tick < LIVENESS_STALE_SECONDS

    def readiness(self) -> dict[str, str]:
        """{check: "ok" or the error message} for every check."""
        results = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its message
                # Unauthenticated: an error quoting a server's answer must not carry our key.
                results[name] = redact(str(exc)) or type(exc).__name__
        return results


def _handler_for(state: HealthState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                alive = state.alive()
                self._send(200 if alive else 503, "application/json",
                           json.dumps({"status": "ok" if alive else "main loop stalled"}).encode())
            elif path == "/readyz":
                results = state.readiness()
                ready = all(v == "ok" for v in results.values())
                self._send(200 if ready else 503, "application/json", json.dumps(results).encode())
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            else:
                self._send(404, "text/plain", b"not found: try /healthz, /readyz or /metrics\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
            return

    return Handler


class HealthServer:
    """Serves the endpoints from a daemon thread."""

    def __init__(self, port: int, state: HealthState) -> None:
        try:
            self.server = ThreadingHTTPServer(("0.0.0.0", port), _handler_for(state))  # noqa: S104
        except OSError as exc:
            raise ConfigError([f"HEALTH_PORT={port}: cannot listen ({exc.strerror}); pick a free port"]) from exc
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("health_server_started", port=self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
