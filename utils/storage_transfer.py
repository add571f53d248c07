"""One transfer's state and limits, and a file slice used as a streamed request body. No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from utils.storage import ProgressCallback, StorageError, UploadJournal, UploadRecord
from utils.tus import TUS_VERSION, Deadline, ProgressLog, chunk_length, parse_offset, request_timeouts, upload_metadata

log = structlog.get_logger("storage")


@dataclass(frozen=True)
class TransferLimits:
    """Timeouts, retries and chunking for one backend, from UPLOAD_* settings."""

    timeout_seconds: float
    max_retries: int
    chunk_size: int
    resumable_threshold: int

    @classmethod
    def from_settings(cls, settings: Any) -> TransferLimits:
        return cls(settings.upload_timeout_seconds, settings.upload_max_retries,
                   settings.upload_chunk_size_bytes, settings.upload_resumable_threshold_bytes)

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
    sha256: str
    deadline: Deadline
    on_progress: ProgressCallback | None = None
    journal: UploadJournal | None = None
    progress_log: ProgressLog = field(default_factory=ProgressLog)

    def tus_base(self) -> dict[str, str]:
        # The server refuses a PATCH to an existing object without x-upsert, even if the create had it.
        return {"Tus-Resumable": TUS_VERSION, "x-upsert": "true"}

    def tus_headers(self) -> dict[str, str]:
        """Headers that create the upload."""
        return {**self.tus_base(), "Upload-Length": str(self.size),
                "Upload-Metadata": upload_metadata(self.bucket, self.path, self.content_type)}

    def record(self, url: str) -> UploadRecord:
        return UploadRecord(url=url, size=self.size, sha256=self.sha256)

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
