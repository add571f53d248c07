"""Object storage: the interface the worker uses, and a local-filesystem backend.

Backends move files between local disk and a bucket without holding them in memory.
They raise `StorageError`, whose `permanent` flag says whether retrying can help.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from utils.storage_folders import ListedObject, list_folder_objects, sweep_partial_uploads

COPY_BUFFER_BYTES = 1024 * 1024
TEMP_PREFIX = ".upload-"  # LocalStorage's temporary beside its target; no object name may start so
STALE_TEMP_SECONDS = 60.0  # a temporary nobody wrote to for this long is a killed copy's leftover

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a transfer runs."""


class StorageError(Exception):
    """A storage request failed; `permanent` is False when a retry may succeed."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


@dataclass(frozen=True)
class BucketRules:
    """What a bucket accepts: a size cap in bytes (inclusive) and exact MIME types."""

    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None

    def check(self, bucket: str, size: int, content_type: str) -> None:
        """Raise a permanent StorageError, with the fix, if the bucket would refuse this file."""
        if self.file_size_limit is not None and size > self.file_size_limit:
            shown, limit = human_sizes(size, self.file_size_limit)
            raise StorageError(
                f"file is {shown} but bucket {bucket} allows {limit}: "
                "raise storage.buckets.file_size_limit (and the project's global upload limit)",
                permanent=True, status=413)
        if self.allowed_mime_types and content_type not in self.allowed_mime_types:
            raise StorageError(
                f"bucket {bucket} does not accept content type {content_type}: "
                f"add it to storage.buckets.allowed_mime_types (allowed: {', '.join(self.allowed_mime_types)})",
                permanent=True, status=415)


@dataclass(frozen=True)
class StoredObject:
    """An object written to storage, with what was verified about it."""

    bucket: str
    path: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class ObjectDigest:
    """What storage holds at a path: its size, and its sha256 where the backend knows it (else None)."""

    size: int
    sha256: str | None


@dataclass(frozen=True)
class UploadRecord:
    """A resumable upload: its URL, the file it carries (size, sha256), and whether it finished."""

    url: str
    size: int
    sha256: str
    stored: bool = False


class UploadJournal(Protocol):
    """Where a backend keeps resumable uploads, so a later attempt can continue one, or skip it when
    it finished."""

    def load(self, bucket: str, path: str) -> UploadRecord | None: ...

    def save(self, bucket: str, path: str, record: UploadRecord) -> None: ...

    def clear(self, bucket: str, path: str) -> None: ...


class Storage(Protocol):
    """What the worker needs from object storage."""

    def upload_file(self, bucket: str, path: str, source: Path, content_type: str,
                    on_progress: ProgressCallback | None = None,
                    journal: UploadJournal | None = None, cache_control: str | None = None) -> StoredObject:
        """Store source at bucket/path, overwriting, cacheable cache_control s; resume via journal; raise StorageError."""
        ...

    def download_file(self, bucket: str, path: str, dest: Path, max_bytes: int,
                      on_progress: ProgressCallback | None = None) -> int:
        """Write bucket/path to dest; refuse objects over max_bytes; return the size."""
        ...

    def object_digest(self, bucket: str, path: str) -> ObjectDigest | None:
        """The object's size and sha256 (None if unknown), or None if it does not exist; one cheap request."""
        ...

    def probe(self, bucket: str, path: str, timeout_seconds: float) -> None:
        """Ask once, with no retry, for bucket/path (which need not exist); raise StorageError
        unless storage answers and takes our credentials within timeout_seconds. For readiness
        probes and `doctor`, which want a prompt answer, not the backoff a transfer gets."""
        ...

    def signed_url(self, bucket: str, path: str, expires_in: int) -> str:
        """A URL that reads the object without credentials until it expires."""
        ...

    def delete(self, bucket: str, paths: list[str]) -> None:
        """Remove objects; missing ones are ignored."""
        ...


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def human_sizes(size: int, limit: int) -> tuple[str, str]:
    """Both sizes for a message comparing them, with exact byte counts when the rounded ones read the same."""
    shown = human_bytes(size), human_bytes(limit)
    if shown[0] != shown[1] or size == limit:
        return shown
    return f"{shown[0]} ({size:,} bytes)", f"{shown[1]} ({limit:,} bytes)"


def input_too_large(size: int, max_bytes: int) -> StorageError:
    """The permanent error for an input object over INPUT_MAX_SIZE_MB."""
    shown, limit = human_sizes(size, max_bytes)
    return StorageError(f"input object is {shown}, over the {limit} input limit: "
                        "raise INPUT_MAX_SIZE_MB or upload a smaller file", permanent=True, status=413)


@dataclass
class SpaceNeeded:
    """What a download will write, filled in once known, for the message when the disk is full."""

    bytes: int | None = None


@contextmanager
def explain_full_disk(what: str) -> Iterator[SpaceNeeded]:
    """Turn a full disk (ENOSPC, EDQUOT) or a file size limit (EFBIG) while downloading into a transient StorageError
    that says what to do; transient because an operator can free the space before the job's next attempt."""
    need = SpaceNeeded()
    try:
        yield need
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        size = f" (it needs {human_bytes(need.bytes)}, {need.bytes:,} bytes)" if need.bytes is not None else ""
        if exc.errno == errno.EFBIG:
            problem = ("is larger than this system lets one file grow", "raise the file size limit (ulimit -f) "
                       "or point WORKER_TEMP_DIR at a filesystem that allows files this large")
        else:
            problem = ("does not fit: the disk of WORKER_TEMP_DIR is full",
                       "free space under WORKER_TEMP_DIR or point it at a larger disk")
        raise StorageError(f"input object {what}{size} {problem[0]} ({os.strerror(exc.errno)}): {problem[1]}; "
                           "the job will be retried", permanent=False) from exc


def safe_object_path(path: str) -> PurePosixPath:
    """Reject paths that could escape a bucket ('..', absolute, empty parts)."""
    pure = PurePosixPath(path)
    if not path or path.startswith("/") or any(p in ("..", ".", "") for p in path.split("/")):
        raise StorageError(f"invalid object path {path!r}", permanent=True, status=400)
    return pure


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, read in fixed-size blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(COPY_BUFFER_BYTES):
            digest.update(block)
    return digest.hexdigest()


def copy_with_sha256(src, dst, total: int, on_progress: ProgressCallback | None) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Copy between open binary files in fixed-size blocks; return (bytes, sha256 hex)."""
    digest = hashlib.sha256()
    done = 0
    while block := src.read(COPY_BUFFER_BYTES):
        dst.write(block)
        digest.update(block)
        done += len(block)
        if on_progress:
            on_progress(done, total)
    return done, digest.hexdigest()


class LocalStorage:
    """Buckets as folders under root: root/{bucket}/{path}. Enforces bucket rules when given."""

    def __init__(self, root: Path, rules: dict[str, BucketRules] | None = None) -> None:
        self.root = root
        self.rules = rules or {}
        sweep_partial_uploads(root, TEMP_PREFIX, STALE_TEMP_SECONDS)

    def _file(self, bucket: str, path: str) -> Path:
        """root/bucket/path; raise a permanent StorageError if it is unsafe or, links resolved, leaves the bucket."""
        folder = self.root / safe_object_path(bucket)
        target = folder / safe_object_path(path)
        if target.name.startswith(TEMP_PREFIX):
            raise StorageError(f"invalid object name {target.name!r}: names starting with {TEMP_PREFIX} are "
                               "the local storage's temporary files", permanent=True, status=400)
        try:
            inside = target.resolve().is_relative_to(folder.resolve())
        except (OSError, RuntimeError):  # a symbolic link loop
            inside = False
        if not inside:
            raise StorageError(f"{bucket}/{path} leads outside the folder of bucket {bucket} through a symbolic "
                               f"link: refused; remove the link from {folder}", permanent=True, status=403)
        return target

    def upload_file(self, bucket: str, path: str, source: Path, content_type: str,
                    on_progress: ProgressCallback | None = None,
                    journal: UploadJournal | None = None, cache_control: str | None = None) -> StoredObject:
        del cache_control  # plain files carry no cache headers
        target = self._file(bucket, path)
        size = source.stat().st_size
        if self.rules:
            if bucket not in self.rules:
                raise StorageError(f"bucket {bucket} does not exist: apply the migrations "
                                   "(python worker.py migrate)", permanent=True, status=404)
            self.rules[bucket].check(bucket, size, content_type)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename, so readers never see half a file.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=TEMP_PREFIX)
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                written, sha256 = copy_with_sha256(src, dst, size, on_progress)
            os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; stored objects are plain readable files
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredObject(bucket, path, written, sha256, content_type)

    def download_file(self, bucket: str, path: str, dest: Path, max_bytes: int,
                      on_progress: ProgressCallback | None = None) -> int:
        source = self._file(bucket, path)
        if not source.is_file():
            raise StorageError(f"input object {bucket}/{path} does not exist", permanent=True, status=404)
        size = source.stat().st_size
        if size > max_bytes:
            raise input_too_large(size, max_bytes)
        with explain_full_disk(f"{bucket}/{path}") as need, open(source, "rb") as src, open(dest, "wb") as dst:
            need.bytes = size
            written, _ = copy_with_sha256(src, dst, size, on_progress)
        return written

    def object_digest(self, bucket: str, path: str) -> ObjectDigest | None:
        target = self._file(bucket, path)
        return ObjectDigest(target.stat().st_size, file_sha256(target)) if target.is_file() else None

    def probe(self, bucket: str, path: str, timeout_seconds: float) -> None:
        self._file(bucket, path)  # folders are made on the first upload: nothing else can be down

    def signed_url(self, bucket: str, path: str, expires_in: int) -> str:
        return self._file(bucket, path).resolve().as_uri()

    def delete(self, bucket: str, paths: list[str]) -> None:
        for path in paths:
            self._file(bucket, path).unlink(missing_ok=True)

    def list_objects(self, bucket: str, prefix: str = "") -> list[ListedObject]:
        """The objects of bucket under the folder prefix ('' for all, else 'a/b/'), sorted by path; copies in
        progress and symbolic links are left out. Raise a permanent StorageError for an unsafe bucket or prefix."""
        folder = self.root / safe_object_path(bucket)
        under = self._file(bucket, prefix.rstrip("/")).relative_to(folder).as_posix() if prefix else ""
        return list_folder_objects(folder, under, TEMP_PREFIX)
