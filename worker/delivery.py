"""Storing a job's artifacts: up to UPLOAD_CONCURRENCY uploads at once, then the handler's manifest.

Each upload thread takes the next artifact in turn, so memory stays bounded whatever the number of
files. The first failure stops the rest (their next chunk raises UploadStopped) and is raised to the
runner once every thread has been joined, so no upload outlives its job. A retried job (attempt > 1)
first asks Storage what it holds at each path and skips a file stored with the same size and sha256.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from handlers.base import Artifact, Manifest
from utils.storage import Storage, StoredObject, UploadJournal, file_sha256
from worker import metrics
from worker.control import JobControl
from worker.errors import InputRejected
from worker.logs import log
from worker.uploads import UploadProgress, UploadStopped

MANIFEST_TYPE = "application/json"


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


class Delivery:
    """Uploads one job's artifacts; `store_all` returns their StoredObjects in the artifacts' order."""

    def __init__(self, dest: Destination, control: JobControl, journal: UploadJournal, storages: list[Storage]) -> None:
        self.dest, self.control, self.journal, self.storages = dest, control, journal, storages
        self._lock = threading.Lock()
        self._failure: BaseException | None = None

    def store_all(self, artifacts: list[Artifact]) -> list[StoredObject]:
        """Upload every artifact; raise the first failure (or the job's interrupt) after all threads end."""
        check_outputs(artifacts)
        progress = UploadProgress(self.control, sum(a.path.stat().st_size for a in artifacts))
        stored: list[StoredObject | None] = [None] * len(artifacts)
        queue = iter(enumerate(artifacts))
        storages = self.storages[:max(1, min(len(self.storages), len(artifacts)))]
        if len(storages) == 1:
            self._drain(storages[0], queue, stored, progress)
        else:
            self._in_threads(storages, queue, stored, progress)
        if self._failure is not None:
            raise self._failure
        return [s for s in stored if s is not None]

    def _in_threads(self, storages: list[Storage], queue: Iterator[tuple[int, Artifact]],
                    stored: list[StoredObject | None], progress: UploadProgress) -> None:
        threads = [threading.Thread(target=contextvars.copy_context().run, name=f"upload-{n}", daemon=True,
                                    args=(self._drain, storage, queue, stored, progress))
                   for n, storage in enumerate(storages)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _drain(self, storage: Storage, queue: Iterator[tuple[int, Artifact]], stored: list[StoredObject | None],
               progress: UploadProgress) -> None:
        """Upload artifacts from the shared queue until it is empty or an upload of the job failed."""
        try:
            while (item := self._next(queue)) is not None:
                progress.check()
                index, artifact = item
                stored[index] = self._store_one(storage, artifact, progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the runner's thread, which raises it
            with self._lock:
                if self._failure is None and not isinstance(exc, UploadStopped):
                    self._failure = exc
            progress.stop()

    def _next(self, queue: Iterator[tuple[int, Artifact]]) -> tuple[int, Artifact] | None:
        with self._lock:
            return None if self._failure is not None else next(queue, None)

    def _store_one(self, storage: Storage, artifact: Artifact, progress: UploadProgress) -> StoredObject:
        path = self.dest.path(artifact.name)
        found = self._already_stored(storage, path, artifact) if self.dest.retry else None
        if found is None:
            started = time.monotonic()
            found = storage.upload_file(self.dest.bucket, path, artifact.path, artifact.content_type,
                                        progress.for_file(artifact.name), self.journal)
            metrics.UPLOAD_SECONDS.inc(time.monotonic() - started)
            metrics.UPLOAD_BYTES.inc(found.size)
        progress.stored(artifact.name, found.size)
        return found

    def _already_stored(self, storage: Storage, path: str, artifact: Artifact) -> StoredObject | None:
        """The object at path if Storage holds this very file (same size and sha256), else None."""
        held = storage.object_digest(self.dest.bucket, path)
        size = artifact.path.stat().st_size
        if held is None or held.sha256 is None or held.size != size:
            return None
        sha256 = file_sha256(artifact.path)
        if held.sha256 != sha256:
            return None
        log.info("upload_skipped", path=artifact.name, reason="stored by an earlier attempt", size=size)
        return StoredObject(self.dest.bucket, path, size, sha256, artifact.content_type)


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


__all__ = ["Delivery", "Destination", "StoragePool", "check_outputs", "manifest_artifact", "manifest_document",
           "output_entry"]
