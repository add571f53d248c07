"""One HTTP session to the Storage API: a request with its errors translated once, and the retry loop around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import structlog

from utils.storage import StorageError
from utils.supabase.connection import StorageAdapter
from utils.supabase.transfer import Refused, TransferLimits, UploadGone
from utils.supabase.tus import Deadline, retry_delay

log = structlog.get_logger("storage")
T = TypeVar("T")


@dataclass
class StorageHttp:
    """A requests session that carries the service key; one per worker thread."""

    key: str
    limits: TransferLimits
    on_retry: Callable[[], None] | None = None  # e.g. a metrics counter

    def __post_init__(self) -> None:
        self.session = requests.Session()
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, StorageAdapter())
        self.auth = {"Authorization": f"Bearer {self.key}", "apikey": self.key}
        self.session.headers.update(self.auth)

    def close(self) -> None:
        self.session.close()

    def send(self, method: str, url: str, deadline: Deadline, action: str, bucket: str,
             ok: tuple[int, ...] = (200,), size: int | None = None, min_read: float = 0.0,
             **kw: Any) -> requests.Response:
        """One HTTP request, its answer awaited at least min_read seconds (within the deadline); raise Refused
        for an error answer, transient StorageError for network trouble."""
        connect, read = self.limits.timeouts
        try:
            resp = self.session.request(method, url, timeout=deadline.timeout(connect, max(read, min_read)), **kw)
        except requests.RequestException as exc:
            raise StorageError(f"{action}: {type(exc).__name__}: {exc}", permanent=False) from exc
        if resp.status_code in ok:
            return resp
        raise Refused.answer(resp.status_code, resp.text, resp.headers.get("Retry-After"), action, bucket, size)

    def retrying(self, attempt: Callable[[int], T], deadline: Deadline, what: str) -> T:
        """Call attempt(n) until it succeeds, backing off between transient failures."""
        n = 0
        while True:
            try:
                return attempt(n)
            except StorageError as exc:
                # A vanished upload is not retried in place: the caller starts a new one.
                if exc.permanent or isinstance(exc, UploadGone) or n >= self.limits.max_retries:
                    raise
                n += 1
                delay = retry_delay(n, getattr(exc, "retry_after", None))
                if delay >= deadline.remaining():
                    raise StorageError(f"{exc} (gave up: UPLOAD_TIMEOUT_SECONDS={deadline.seconds:g} "
                                       "would pass before the next retry)", permanent=False) from exc
                log.warning("storage_retry", what=what, retry=n, delay_s=round(delay, 2), error=str(exc))
                if self.on_retry is not None:
                    self.on_retry()
                time.sleep(delay)
