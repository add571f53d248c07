"""What the runner hands to Storage uploads: a journal on the job row and a progress mapping."""

from __future__ import annotations

import threading
from uuid import UUID

from utils.storage import ProgressCallback, UploadRecord
from worker.control import JobControl
from worker.db import JobStore

# Uploading owns this slice of the job's progress bar.
DOWNLOAD_PROGRESS_END = 5.0
UPLOAD_PROGRESS_START = 85.0
UPLOAD_PROGRESS_END = 99.0


class JobUploadJournal:
    """Keeps a job's resumable uploads in public.media_job_uploads, so a retry can resume them, or skip
    those that finished."""

    def __init__(self, store: JobStore, job_id: UUID) -> None:
        self.store, self.job_id = store, job_id

    def load(self, bucket: str, path: str) -> UploadRecord | None:
        found = self.store.load_upload(self.job_id, bucket, path)
        return UploadRecord(*found) if found else None

    def save(self, bucket: str, path: str, record: UploadRecord) -> None:
        self.store.save_upload(self.job_id, bucket, path, record.url, record.size, record.sha256, record.stored)

    def clear(self, bucket: str, path: str) -> None:
        self.store.clear_upload(self.job_id, bucket, path)


class UploadStopped(Exception):
    """Another upload of the job failed, so this one stops between chunks; the first failure is what counts."""


class UploadProgress:
    """Bytes stored so far by a job's upload threads, summed and mapped onto 85..99 % of the job; thread-safe.

    Each report also raises the job's pending interrupt (cancel, lost lease, shutdown), and UploadStopped
    once another upload of the job failed, so every upload in flight stops between chunks; a
    resumable upload can continue on the next attempt.
    """

    def __init__(self, control: JobControl, total: int) -> None:
        self.control, self.total = control, total
        self._stored = 0
        self._in_flight: dict[str, int] = {}
        self._stopped = False
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Make every later report raise UploadStopped."""
        self._stopped = True

    def check(self) -> None:
        """Raise the pending interrupt, or UploadStopped after stop()."""
        self.control.check()
        if self._stopped:
            raise UploadStopped("another upload of this job failed")

    def for_file(self, name: str) -> ProgressCallback:
        """The callback for one file's (done, size)."""
        def report(done: int, _size: int) -> None:
            self.check()
            with self._lock:
                self._in_flight[name] = done
                self._publish()
        return report

    def stored(self, name: str, size: int) -> None:
        """A file is stored (or found stored): its bytes count as done."""
        with self._lock:
            self._in_flight.pop(name, None)
            self._stored += size
            self._publish()

    def _publish(self) -> None:
        done = self._stored + sum(self._in_flight.values())
        share = min(done / self.total, 1.0) if self.total else 1.0
        self.control.set_progress(UPLOAD_PROGRESS_START + (UPLOAD_PROGRESS_END - UPLOAD_PROGRESS_START) * share)


def download_progress(control: JobControl) -> ProgressCallback:
    """Map the input download onto 0..5 % of the job; a pending interrupt stops it between blocks."""
    def report(done: int, size: int) -> None:
        control.check()
        control.set_progress(DOWNLOAD_PROGRESS_END * done / size if size else 0.0)
    return report
