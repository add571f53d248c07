"""The Cache-Control each object of tests/storage_server.py is served with, derived from its upload as the
real server does: a form's or TUS's `cacheControl` of N seconds becomes `max-age=N`; a raw body's
`cache-control` header is kept as sent; none at all is `no-cache`."""

from __future__ import annotations

import threading

NONE_GIVEN = "no-cache"


def max_age(seconds: str | None) -> str:
    return f"max-age={seconds}" if seconds else NONE_GIVEN


class CacheControls:
    """Objects' Cache-Control by (bucket, path), and that of TUS uploads not yet complete by upload id."""

    def __init__(self) -> None:
        self.served: dict[tuple[str, str], str] = {}
        self.pending: dict[str, str] = {}
        self.lock = threading.Lock()

    def object_uploaded(self, bucket: str, path: str, header: str | None, form_field: str | None) -> None:
        """A standard upload was stored: multipart (form_field given) or a raw body (header)."""
        with self.lock:
            self.served[(bucket, path)] = max_age(form_field) if form_field is not None else header or NONE_GIVEN

    def upload_created(self, upload_id: str, seconds: str | None) -> None:
        with self.lock:
            self.pending[upload_id] = max_age(seconds)

    def upload_completed(self, upload_id: str, bucket: str, path: str) -> None:
        with self.lock:
            self.served[(bucket, path)] = self.pending.pop(upload_id, NONE_GIVEN)

    def header(self, bucket: str, path: str) -> str:
        """What a GET of the object answers as Cache-Control."""
        with self.lock:
            return self.served.get((bucket, path), NONE_GIVEN)
