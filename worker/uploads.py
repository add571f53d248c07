"""What the runner hands to Storage uploads: a journal on the job row and a progress mapping."""

from __future__ import annotations

from uuid import UUID

from utils.storage import ProgressCallback, UploadRecord
from worker.control import JobControl
from worker.db import JobStore

# Uploading owns this slice of the job's progress bar.
DOWNLOAD_PROGRESS_END = 5.0
UPLOAD_PROGRESS_START = 85.0
UPLOAD_PROGRESS_END = 99.0


class JobUploadJournal:
    """Keeps a job's resumable upload URLs in public.media_job_uploads, so a retry can resume them."""

    def __init__(self, store: JobStore, job_id: UUID) -> None:
        self.store, self.job_id = store, job_id

    def load(self, bucket: str, path: str) -> UploadRecord | None:
        found = self.store.load_upload(self.job_id, bucket, path)
        return UploadRecord(*found) if found else None

    def save(self, bucket: str, path: str, record: UploadRecord) -> None:
        self.store.save_upload(self.job_id, bucket, path, record.url, record.size, record.sha256)

    def clear(self, bucket: str, path: str) -> None:
        self.store.clear_upload(self.job_id, bucket, path)


def upload_progress(control: JobControl, done_before: int, total: int) -> ProgressCallback:
    """Map one file's (done, size) onto 85..99 % of the job, given the bytes of earlier files.

    It also raises the job's pending interrupt, so a cancel, a lost lease or a shutdown stops a
    long upload between chunks; a resumable upload can continue on the next attempt.
    """
    def report(done: int, _size: int) -> None:
        control.check()
        share = (done_before + done) / total if total else 1.0
        control.set_progress(UPLOAD_PROGRESS_START + (UPLOAD_PROGRESS_END - UPLOAD_PROGRESS_START) * share)
    return report


def download_progress(control: JobControl) -> ProgressCallback:
    """Map the input download onto 0..5 % of the job; a pending interrupt stops it between blocks."""
    def report(done: int, size: int) -> None:
        control.check()
        control.set_progress(DOWNLOAD_PROGRESS_END * done / size if size else 0.0)
    return report
