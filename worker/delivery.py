"""Storing a job's artifacts: up to UPLOAD_CONCURRENCY uploads at once, while ffmpeg still runs and after it.

Upload threads take files from one queue in turn, so memory stays bounded whatever the number of files. Files
reach the queue two ways: a handler's live outputs while it runs, as worker.live_outputs finds each finished,
and then every artifact the handler lists (`store`). A file stored during the run counts only if it is still
the same file (inode, size, mtime) when it is listed, so the outputs of a hardware run that failed and was done
again on the CPU are stored again. The first failure stops the rest (their next chunk raises UploadStopped) and
is raised to the runner; `close` joins every thread, so no upload outlives its job. A retried job (attempt > 1)
first asks Storage what it holds at each path and skips a file stored with the same size and sha256.
"""

from __future__ import annotations

import contextvars
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from handlers.base import Artifact, Manifest
from utils.storage import Storage, StoredObject, UploadJournal, file_sha256
from worker import metrics
from worker.control import JobControl
from worker.errors import InputRejected
from worker.logs import log
from worker.uploads import UploadProgress, UploadStopped

MANIFEST_TYPE = "application/json"
WAIT_SECONDS = 0.2  # how often a runner waiting for its uploads looks at the job's interrupt


class StoragePool:
    """Storage backends for upload threads: the runner's own for the first, one more from the factory for
    each other thread, kept for the runner's life (a backend holds one HTTP session and is not shared)."""

    def __init__(self, first: Storage, factory: Callable[[], Storage] | None) -> None:
        self._storages, self._factory = [first], factory

    def take(self, count: int) -> list[Storage]:
        """Up to `count` backends; just the first when there is no factory."""
        while self._factory is not None and len(self._storages) < count:
            self._storages.append(self._factory())
        return self._storages[:count]


@dataclass(frozen=True)
class Destination:
    """Where one job's outputs go: bucket and {owner}/{job_id}/, and whether a retry may find them stored."""

    bucket: str
    folder: str
    retry: bool

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"


@dataclass(frozen=True)
class Upload:
    """One file to store: its object name, local path, content type and the identity of the file queued."""

    name: str
    path: Path
    content_type: str
    identity: tuple[int, int, int]
    cache_control: str | None = None  # seconds readers may cache it; None: the backend's default


class DeliveryProgress(UploadProgress):
    """UploadProgress for uploads that begin while ffmpeg runs: its progress owns the bar then, so the bytes stored
    only count until `expect(total)`; from then on they (those stored during the run too) move it over 85..99 %."""

    def __init__(self, control: JobControl) -> None:
        super().__init__(control, 0)
        self.expected = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def expect(self, total: int) -> None:
        with self._lock:
            self.total, self.expected = total, True
            self._publish()

    def _publish(self) -> None:
        if self.expected:
            super()._publish()


def file_identity(path: Path) -> tuple[int, int, int]:
    """(inode, size, mtime_ns): a file ffmpeg replaced or wrote again has another one."""
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


class Delivery:
    """Uploads one job's files on up to len(storages) threads; `close` (or leaving the `with`) joins them."""

    def __init__(self, dest: Destination, control: JobControl, journal: UploadJournal, storages: list[Storage]) -> None:
        self.dest, self.control, self.journal, self.storages = dest, control, journal, storages
        self.progress = DeliveryProgress(control)
        self._queue: queue.SimpleQueue[Upload | None] = queue.SimpleQueue()
        self._queued: dict[Path, Upload] = {}  # the latest file queued at each path
        self._done: dict[Path, tuple[Upload, StoredObject]] = {}
        self._changed = threading.Condition()
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(abort=exc_type is not None)

    @property
    def failed(self) -> bool:
        """True once an upload of the job failed: the job cannot complete, so its ffmpeg may stop."""
        return self._failure is not None

    def raise_failure(self) -> None:
        """Raise the first upload failure, if any."""
        if self._failure is not None:
            raise self._failure

    def submit(self, name: str, path: Path, content_type: str, identity: tuple[int, int, int] | None = None,
               cache_control: str | None = None) -> None:
        """Queue a finished file for upload, unless this very file is queued already."""
        upload = Upload(name, path, content_type, identity or file_identity(path), cache_control)
        with self._changed:
            if self._queued.get(path) == upload:
                return
            self._queued[path] = upload
            if len(self._threads) < len(self.storages):
                self._start_thread(self.storages[len(self._threads)])
        self._queue.put(upload)

    def store(self, artifacts: list[Artifact]) -> list[StoredObject]:
        """Every artifact stored, in their order: those stored during the run if unchanged, the rest now;
        raise the first failure or the job's interrupt."""
        check_outputs(artifacts)
        self.progress.expect(sum(a.path.stat().st_size for a in artifacts))
        for artifact in artifacts:
            self.submit(artifact.name, artifact.path, artifact.content_type)
        return [self.wait_stored(artifact.path) for artifact in artifacts]

    def is_stored(self, path: Path) -> bool:
        """True once the file last queued from path is stored."""
        with self._changed:
            done = self._done.get(path)
            return done is not None and done[0] == self._queued.get(path)

    def close(self, abort: bool = False) -> None:
        """Stop taking files (and, if abort, the uploads in flight, between chunks); join every thread."""
        if abort:
            self.progress.stop()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def wait_stored(self, path: Path) -> StoredObject:
        """Wait until the file queued from path is stored; raise the first failure or the job's interrupt."""
        with self._changed:
            while True:
                self.control.check()
                self.raise_failure()
                done = self._done.get(path)
                if done is not None and done[0] == self._queued[path]:
                    return done[1]
                self._changed.wait(WAIT_SECONDS)

    def _start_thread(self, storage: Storage) -> None:
        thread = threading.Thread(target=contextvars.copy_context().run, name=f"upload-{len(self._threads)}",
                                  daemon=True, args=(self._drain, storage))
        self._threads.append(thread)
        thread.start()

    def _drain(self, storage: Storage) -> None:
        """Upload files from the shared queue until told to stop; after a failure, only empty it."""
        while (upload := self._queue.get()) is not None:
            if self._failure is not None or self.progress.stopped:
                continue
            try:
                stored = self._store_one(storage, upload)
            except BaseException as exc:  # noqa: BLE001 - handed to the runner's thread, which raises it
                self._fail(exc)
                continue
            if stored is None:  # replaced since it was queued; the new file is queued when the handler lists it
                continue
            with self._changed:
                self._done[upload.path] = (upload, stored)
                self._changed.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._changed:
            if self._failure is None and not isinstance(exc, UploadStopped):
                self._failure = exc
            self._changed.notify_all()
        self.progress.stop()

    def _store_one(self, storage: Storage, upload: Upload) -> StoredObject | None:
        self.progress.check()
        if file_identity(upload.path) != upload.identity:
            return None
        path = self.dest.path(upload.name)
        found = self._already_stored(storage, path, upload) if self.dest.retry else None
        if found is None:
            started = time.monotonic()
            found = storage.upload_file(self.dest.bucket, path, upload.path, upload.content_type,
                                        self.progress.for_file(str(upload.path)), self.journal, upload.cache_control)
            metrics.UPLOAD_SECONDS.inc(time.monotonic() - started)
            metrics.UPLOAD_BYTES.inc(found.size)
        self.progress.stored(str(upload.path), found.size)
        return found

    def _already_stored(self, storage: Storage, path: str, upload: Upload) -> StoredObject | None:
        """The object at path if Storage holds this very file (same size and sha256), else None. The
        sha256 is the object's own (single-request uploads) or, for a finished resumable upload of
        this job, the journal's."""
        held = storage.object_digest(self.dest.bucket, path)
        size = upload.identity[1]
        if held is None or held.size != size:
            return None
        expected = held.sha256 or self._journaled_sha256(path, size)
        if expected is None:
            return None
        sha256 = file_sha256(upload.path)
        if expected != sha256:
            return None
        log.info("upload_skipped", path=upload.name, reason="stored by an earlier attempt", size=size)
        return StoredObject(self.dest.bucket, path, size, sha256, upload.content_type)

    def _journaled_sha256(self, path: str, size: int) -> str | None:
        record = self.journal.load(self.dest.bucket, path)
        return record.sha256 if record and record.stored and record.size == size else None


def check_outputs(artifacts: list[Artifact]) -> None:
    """Raise InputRejected for an artifact ffmpeg did not write (missing or empty)."""
    for artifact in artifacts:
        if not artifact.path.is_file() or artifact.path.stat().st_size == 0:
            raise InputRejected(f"ffmpeg produced no {artifact.kind} output ({artifact.name}) for this input")


def output_entry(artifact: Artifact, stored: StoredObject) -> dict[str, Any]:
    """One entry of result.outputs."""
    return {"kind": artifact.kind, "bucket": stored.bucket, "path": stored.path, "size": stored.size,
            "sha256": stored.sha256, "content_type": stored.content_type, **artifact.meta}


def manifest_document(manifest: Manifest, dest: Destination, artifacts: list[Artifact],
                      stored: list[StoredObject]) -> dict[str, Any]:
    """The manifest's JSON: every stored artifact under its folder, named relative to it, with size and sha256."""
    folder = PurePosixPath(manifest.name).parent
    files = [{"name": PurePosixPath(a.name).relative_to(folder).as_posix(), "kind": a.kind, "size": s.size,
              "sha256": s.sha256, "content_type": s.content_type}
             for a, s in zip(artifacts, stored, strict=True) if PurePosixPath(a.name).is_relative_to(folder)]
    prefix = dest.path(folder.as_posix()) if folder.name else dest.folder
    return {"version": 1, "bucket": dest.bucket, "folder": prefix + "/", "count": len(files),
            "bytes": sum(f["size"] for f in files), "files": files}


def manifest_artifact(manifest: Manifest, document: dict[str, Any]) -> Artifact:
    """Write the manifest into the work directory; return it as the artifact to upload last."""
    manifest.path.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    return Artifact(kind=manifest.kind, name=manifest.name, path=manifest.path, content_type=MANIFEST_TYPE,
                    meta={"files": document["count"], "bytes": document["bytes"]})


__all__ = ["Delivery", "Destination", "StoragePool", "Upload", "check_outputs", "file_identity", "manifest_artifact",
           "manifest_document", "output_entry"]
