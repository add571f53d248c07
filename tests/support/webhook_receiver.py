"""A local webhook endpoint with scripted answers, and a Standard Webhooks verifier written from
the spec, sharing no code with utils/webhooks.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def spec_verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification: HMAC-SHA256 over id.timestamp.body, any v1 signature may match."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = headers["webhook-id"].encode() + b"." + headers["webhook-timestamp"].encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return True
    return False


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that answers with scripted statuses (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    extra_headers: dict[str, str] = field(default_factory=dict)
    stall: threading.Event | None = None
    requests: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        return self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if receiver.stall is not None:
                receiver.stall.wait(10)
            status = receiver.answer()
            payload = b"nope: bad request" if status >= 300 else b"ok"
            self.send_response(status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # clients that time out
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield rec
    finally:
        if rec.stall is not None:
            rec.stall.set()
        server.shutdown()
        server.server_close()
