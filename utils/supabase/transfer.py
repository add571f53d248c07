"""Pieces of a Storage transfer that make no request: settings, limits, state, errors, streamed bodies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import structlog

from utils.storage import ProgressCallback, StorageError, UploadJournal, UploadRecord, file_sha256
from utils.supabase.tus import (
    TUS_VERSION,
    UPLOAD_GONE_STATUSES,
    Deadline,
    Failure,
    ProgressLog,
    chunk_length,
    explain,
    parse_offset,
    read_failure,
    request_timeouts,
    upload_metadata,
)

log = structlog.get_logger("storage")
# How long readers may cache a stored object, in seconds, as the Supabase clients' `cacheControl`
# (the server serves `cache-control: max-age=N`), unless the upload asks for another.
CACHE_CONTROL_SECONDS = "3600"


class SupabaseSettings(Protocol):
    """The configuration this backend reads (worker.config.Settings satisfies it)."""

    @property
    def supabase_url(self) -> str | None: ...
    @property
    def supabase_service_role_key(self) -> str | None: ...
    @property
    def upload_timeout_seconds(self) -> float: ...
    @property
    def upload_max_retries(self) -> int: ...
    @property
    def upload_chunk_size_bytes(self) -> int: ...
    @property
    def upload_resumable_threshold_bytes(self) -> int: ...
    @property
    def upload_pipelining(self) -> bool: ...


class Refused(StorageError):
    """Storage answered with an error; `failure` holds the status that counts."""

    def __init__(self, message: str, failure: Failure, retry_after: str | None = None) -> None:
        super().__init__(message, permanent=not failure.retryable, status=failure.status)
        self.failure, self.retry_after = failure, retry_after

    @classmethod
    def answer(cls, status: int, body: str, retry_after: str | None, action: str, bucket: str,
               size: int | None) -> Refused:
        """The error an answer means, classified by its body and explained for a person."""
        failure = read_failure(status, body)
        return cls(explain(failure, action, bucket, size), failure, retry_after)


class UploadGone(StorageError):
    """The server no longer knows this resumable upload; start a new one."""


class NoResumableEndpoint(StorageError):
    """The server has no TUS endpoint; fall back to one streamed request."""


@dataclass(frozen=True)
class TransferLimits:
    """Timeouts, retries and chunking for one backend, from UPLOAD_* settings."""

    timeout_seconds: float
    max_retries: int
    chunk_size: int
    resumable_threshold: int
    pipelining: bool = True

    @classmethod
    def from_settings(cls, settings: SupabaseSettings) -> TransferLimits:
        return cls(settings.upload_timeout_seconds, settings.upload_max_retries, settings.upload_chunk_size_bytes,
                   settings.upload_resumable_threshold_bytes, settings.upload_pipelining)

    @property
    def timeouts(self) -> tuple[float, float]:
        return request_timeouts(self.timeout_seconds)

    @property
    def connect_timeout(self) -> float:
        return self.timeouts[0]

    @property
    def read_timeout(self) -> float:
        return self.timeouts[1]


@dataclass
class Transfer:
    """One upload: what is sent where, its deadline, and where progress goes."""

    bucket: str
    path: str
    source: Path
    content_type: str
    size: int
    sha256: BackgroundSha256
    deadline: Deadline
    on_progress: ProgressCallback | None = None
    journal: UploadJournal | None = None
    progress_log: ProgressLog = field(default_factory=ProgressLog)
    cache_control: str = CACHE_CONTROL_SECONDS
    upload_url: str | None = None  # the TUS upload the bytes go to
    recorded: bool = False  # whether the journal holds upload_url
    one_at_a_time: bool = False  # its pipeline broke: the rest goes one chunk per round trip
    sent: bool = False  # whether this attempt sent a PATCH to upload_url

    def tus_base(self) -> dict[str, str]:
        # The server refuses a PATCH to an existing object without x-upsert, even if the create had it.
        return {"Tus-Resumable": TUS_VERSION, "x-upsert": "true"}

    def tus_headers(self) -> dict[str, str]:
        """Headers that create the upload. They carry no sha256: waiting for the hash would hold back
        the first byte (about 0.7 s per GiB); the journal records it instead (`record_stored`)."""
        return {**self.tus_base(), "Upload-Length": str(self.size),
                "Upload-Metadata": upload_metadata(self.bucket, self.path, self.content_type, self.cache_control)}

    def use_upload(self, url: str, recorded: bool) -> None:
        self.upload_url, self.recorded, self.sent = url, recorded, False

    def record_upload(self, wait: bool = False) -> None:
        """Journal the upload URL once the file's sha256 is known (waiting for it only if asked)."""
        if self.journal and self.upload_url and not self.recorded and (wait or self.sha256.done()):
            self.journal.save(self.bucket, self.path, UploadRecord(self.upload_url, self.size, self.sha256.result()))
            self.recorded = True

    def record_stored(self) -> None:
        """Journal that the server holds every byte, with the file's sha256, which a retry compares."""
        if self.journal and self.upload_url:
            self.journal.save(self.bucket, self.path,
                              UploadRecord(self.upload_url, self.size, self.sha256.result(), stored=True))

    def next_chunk(self, offset: int, chunk_size: int) -> int:
        return chunk_length(offset, self.size, chunk_size)

    def offset_from(self, header: str | None) -> int:
        """The server's Upload-Offset; a bad one is a permanent protocol error."""
        try:
            return parse_offset(header, self.size)
        except ValueError as exc:
            raise StorageError(f"Storage sent a bad resumable upload answer: {exc}", permanent=True) from exc

    def report(self, done: int) -> None:
        """Pass progress on, and log it at most every few seconds."""
        if self.on_progress:
            self.on_progress(done, self.size)
        fields = self.progress_log.due(done, self.size)
        if fields:
            log.info("upload_progress", bucket=self.bucket, path=self.path, **fields)


class FileSlice:
    """`length` bytes of an open file from `offset`, read in blocks as a request body."""

    def __init__(self, f: IO[bytes], offset: int, length: int) -> None:
        f.seek(offset)
        self.f, self.length, self.left = f, length, length

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data


class BackgroundSha256:
    """A file's sha256, computed on its own thread while the upload reads the file too.

    hashlib releases the GIL on large blocks, so on a multi-core machine the hash costs
    the upload almost no time, where a pass before it would cost a full read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._value: str | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name=f"sha256-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = file_sha256(self.path)
        except OSError as exc:
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> str:
        """The hex digest, waiting for it if needed; raise a permanent StorageError if unreadable."""
        self._thread.join()
        if self._value is None:
            raise StorageError(f"cannot read {self.path}: {self._error}", permanent=True) from self._error
        return self._value


@contextmanager
def upload_gone_on() -> Iterator[None]:
    """Turn a 404/410 on an upload URL into UploadGone."""
    try:
        yield
    except Refused as exc:
        if exc.failure.status in UPLOAD_GONE_STATUSES:
            raise UploadGone(f"the server no longer knows the upload ({exc.failure.status})", permanent=False) from exc
        raise
