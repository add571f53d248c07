"""Storage retention (issue 20): housekeeping deletes the objects nobody will read again, through Storage.

- Abandoned uploads (UPLOAD_RETENTION_HOURS): objects of media-uploads older than that plus one lease,
  unless a pending or processing job names them as its input.
- Outputs of expired jobs (OUTPUT_RETENTION_FOLLOWS_JOBS): a job past its retention first loses its objects
  under media-outputs/{owner}/{job_id}/; its row goes only once none is left, so after a Storage error the
  row stays and the next pass tries again.

Candidates come from storage.objects with Supabase, from the folders locally; deletion always goes through
the Storage interface, in bounded batches, under the housekeeping advisory lock. A job inserted while a pass
runs: "named by a live job" is checked in the statement that selects each batch (locally, right before its
delete), and a fresh upload (younger than the retention plus one lease) is never a candidate. Left over: a
job inserted between a batch's selection and its delete, for an upload abandoned that long, fails with
"input object does not exist".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from utils.storage import TEMP_PREFIX, LocalStorage, Storage, StorageError
from utils.storage_folders import list_folder_objects
from worker import metrics
from worker.config import Settings, storage_refusal
from worker.db.retention import BucketUsage, ExpiredJob, ObjectRow, RetentionStore
from worker.errors import DatabaseUnavailable
from worker.logs import log
from worker.runtime import INPUT_BUCKET, OUTPUT_BUCKET, local_storage_root

BUCKETS = (INPUT_BUCKET, OUTPUT_BUCKET)  # nothing outside these two is ever listed or deleted
REASON_UPLOAD = "abandoned_upload"
REASON_JOB = "expired_job"
UPLOAD_BATCH = 100  # objects per Storage delete request
JOB_BATCH = 20  # jobs per batch, one delete request each
MAX_BATCHES = 50  # per kind and pass: a backlog is worked off over several passes


@dataclass(frozen=True)
class RetentionPolicy:
    """What a pass deletes, from the settings; durations in seconds."""

    upload_retention_seconds: float | None
    follows_jobs: bool
    job_retention_seconds: float
    failed_retention_seconds: float
    lease_seconds: float

    @classmethod
    def from_settings(cls, s: Settings) -> RetentionPolicy:
        hours = s.upload_retention_hours
        return cls(None if hours is None else hours * 3600, s.output_retention_follows_jobs,
                   s.job_retention_days * 86400, s.job_failed_retention_days * 86400, s.worker_lease_seconds)

    @property
    def enabled(self) -> bool:
        return self.upload_retention_seconds is not None or self.follows_jobs

    @property
    def upload_cutoff_seconds(self) -> float | None:
        """Uploads younger than this are never candidates: the retention plus one lease."""
        return None if self.upload_retention_seconds is None else self.upload_retention_seconds + self.lease_seconds


@dataclass(frozen=True)
class Deletion:
    """One object a pass deleted (with --dry-run: would delete), and why."""

    bucket: str
    path: str
    size: int
    age_seconds: float
    reason: str


@dataclass
class PassReport:
    """What one pass did: the objects deleted, the job rows deleted, the Storage errors that stopped it."""

    dry_run: bool = False
    locked_out: bool = False  # another worker holds the housekeeping lock: nothing was done
    deletions: list[Deletion] = field(default_factory=list)
    jobs_deleted: int = 0
    errors: list[str] = field(default_factory=list)

    def bytes_by(self) -> dict[tuple[str, str], int]:
        """Bytes deleted by (bucket, reason)."""
        totals: dict[tuple[str, str], int] = {}
        for d in self.deletions:
            totals[d.bucket, d.reason] = totals.get((d.bucket, d.reason), 0) + d.size
        return totals


# Decisions (pure).

def old_enough(objects: list[ObjectRow], older_than_seconds: float) -> list[ObjectRow]:
    """The objects strictly older than the cutoff."""
    return [o for o in objects if o.age_seconds > older_than_seconds]


def outputs_by_job(jobs: list[ExpiredJob], objects: list[ObjectRow]) -> dict[UUID, list[ObjectRow]]:
    """Each job's objects: those under its folder, and only those."""
    return {job.id: [o for o in objects if o.path.startswith(job.folder)] for job in jobs}


def emptied_jobs(jobs: list[ExpiredJob], remaining: list[ObjectRow]) -> list[UUID]:
    """The jobs with no object left under their folder: their rows may go."""
    left = outputs_by_job(jobs, remaining)
    return [job.id for job in jobs if not left[job.id]]


def next_cursor(batch: list[ObjectRow], limit: int) -> str | None:
    """Where the next batch starts (after this path), or None when this batch was the last."""
    return batch[-1].path if len(batch) >= limit else None


class Catalogue(Protocol):
    """Where a pass finds objects: storage.objects (RetentionStore) with Supabase, the folders locally."""

    def old_uploads(self, bucket: str, older_than_seconds: float, after: str, limit: int) -> list[ObjectRow]:
        """The next batch, by path after `after`, of objects older than the cutoff that no live job names."""
        ...

    def objects_under(self, bucket: str, folders: list[str]) -> list[ObjectRow]: ...


@dataclass
class FolderCatalogue:
    storage: LocalStorage
    store: RetentionStore

    def _listed(self, bucket: str, prefix: str = "") -> list[ObjectRow]:
        now = time.time()
        return [ObjectRow(o.path, o.size, now - o.modified_at) for o in self.storage.list_objects(bucket, prefix)]

    def old_uploads(self, bucket: str, older_than_seconds: float, after: str, limit: int) -> list[ObjectRow]:
        old = old_enough([o for o in self._listed(bucket) if o.path > after], older_than_seconds)
        unnamed = self.store.unnamed_uploads(bucket, [o.path for o in old]) if old else set()
        return [o for o in old if o.path in unnamed][:limit]

    def objects_under(self, bucket: str, folders: list[str]) -> list[ObjectRow]:
        return [o for folder in folders for o in self._listed(bucket, folder)]


def catalogue_for(storage: Storage, store: RetentionStore) -> Catalogue:
    return FolderCatalogue(storage, store) if isinstance(storage, LocalStorage) else store


@dataclass
class RetentionPass:
    """One pass: its store, storage, policy and report; `stop` ends it between batches."""

    store: RetentionStore
    storage: Storage
    policy: RetentionPolicy
    report: PassReport
    stop: threading.Event | None = None

    def __post_init__(self) -> None:
        self.catalogue = catalogue_for(self.storage, self.store)

    def run(self) -> None:
        cutoff = self.policy.upload_cutoff_seconds
        if cutoff is not None:
            self.delete_old_uploads(cutoff)
        if self.policy.follows_jobs:
            self.delete_expired_jobs()

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()
    def delete(self, bucket: str, found: list[Deletion]) -> bool:
        """Delete these objects of bucket through Storage (dry run: only list them); False after a Storage error."""
        if bucket not in BUCKETS:
            raise ValueError(f"retention never touches bucket {bucket!r}")
        if not self.report.dry_run:
            try:
                self.storage.delete(bucket, [d.path for d in found])
            except StorageError as exc:
                self.report.errors.append(f"deleting {len(found)} object(s) from {bucket}: {exc}")
                return False
        self.report.deletions.extend(found)
        return True

    def delete_old_uploads(self, cutoff: float) -> None:
        after: str | None = ""
        for _ in range(MAX_BATCHES):
            if after is None or self.stopped():
                return
            batch = self.catalogue.old_uploads(INPUT_BUCKET, cutoff, after, UPLOAD_BATCH)
            after = next_cursor(batch, UPLOAD_BATCH)
            found = [Deletion(INPUT_BUCKET, o.path, o.size, o.age_seconds, REASON_UPLOAD) for o in batch]
            if found and not self.delete(INPUT_BUCKET, found):
                return

    def delete_expired_jobs(self) -> None:
        after = UUID(int=0)
        for _ in range(MAX_BATCHES):
            jobs = self.store.expired_jobs(self.policy.job_retention_seconds, self.policy.failed_retention_seconds,
                                           after, JOB_BATCH)
            if not jobs:
                return
            emptied, complete = self.delete_outputs(jobs)
            if self.report.dry_run:
                self.report.jobs_deleted += len(emptied)
            elif emptied:
                self.report.jobs_deleted += len(self.store.delete_expired_jobs(
                    emptied, self.policy.job_retention_seconds, self.policy.failed_retention_seconds))
            if not complete or len(jobs) < JOB_BATCH or self.stopped():
                return
            after = jobs[-1].id

    def delete_outputs(self, jobs: list[ExpiredJob]) -> tuple[list[UUID], bool]:
        """Delete each job's outputs; return the jobs left with none, and False if a Storage error cut it short."""
        outputs = outputs_by_job(jobs, self.catalogue.objects_under(OUTPUT_BUCKET, [job.folder for job in jobs]))
        done: list[ExpiredJob] = []
        for job in jobs:
            found = [Deletion(OUTPUT_BUCKET, o.path, o.size, o.age_seconds, REASON_JOB) for o in outputs[job.id]]
            if found and not self.delete(OUTPUT_BUCKET, found):
                break
            done.append(job)
        if self.report.dry_run or not done:
            return [job.id for job in done], len(done) == len(jobs)
        # Only rows whose folders are empty now go: what Storage did not delete keeps its job's record.
        remaining = self.catalogue.objects_under(OUTPUT_BUCKET, [job.folder for job in done])
        return emptied_jobs(done, remaining), len(done) == len(jobs)


def run_pass(store: RetentionStore, storage: Storage, policy: RetentionPolicy, *, dry_run: bool = False,
             stop: threading.Event | None = None) -> PassReport:
    """One retention pass. A dry run only reads (and takes no lock); a real one runs under the housekeeping lock
    (report.locked_out when another worker has it) and counts the bytes it deleted in /metrics.
    Raise DatabaseUnavailable if the database goes away; Storage errors end up in report.errors."""
    report = PassReport(dry_run=dry_run)
    if dry_run:
        RetentionPass(store, storage, policy, report, stop).run()
        return report
    with store.exclusive() as locked:
        if not locked:
            report.locked_out = True
            return report
        RetentionPass(store, storage, policy, report, stop).run()
    for (bucket, reason), size in report.bytes_by().items():
        metrics.STORAGE_DELETED_BYTES.labels(bucket, reason).inc(size)
    return report


def log_report(report: PassReport) -> None:
    for error in report.errors:
        log.warning("storage_retention_error", error=error, hint="kept for the next pass")
    if report.deletions or report.jobs_deleted:
        log.info("storage_retention_pass", objects_deleted=len(report.deletions),
                 bytes_deleted={f"{b}/{r}": n for (b, r), n in report.bytes_by().items()},
                 jobs_deleted=report.jobs_deleted)


def start_pass(settings: Settings, db_url: str, storage_factory: Callable[[], Storage],
               stop: threading.Event) -> threading.Thread | None:
    """Start one pass in a thread of its own, so that Storage requests never hold up the daemon's main loop
    (and /healthz); None when retention is off. A pass already running holds the lock: the new one yields."""
    policy = RetentionPolicy.from_settings(settings)
    if not policy.enabled:
        return None
    thread = threading.Thread(target=_background_pass, args=(policy, db_url, storage_factory, stop),
                              name="storage-retention", daemon=True)
    thread.start()
    return thread


def _background_pass(policy: RetentionPolicy, db_url: str, storage_factory: Callable[[], Storage],
                     stop: threading.Event) -> None:
    try:
        storage = storage_factory()
        try:
            with RetentionStore(db_url) as store:
                log_report(run_pass(store, storage, policy, stop=stop))
        finally:
            close = getattr(storage, "close", None)
            if close is not None:
                close()
    except DatabaseUnavailable as exc:
        log.warning("storage_retention_skipped", error=str(exc))
    except Exception:  # noqa: BLE001 - maintenance must never take the daemon down
        log.exception("storage_retention_failed")


def storage_usage(settings: Settings, db_url: str) -> list[BucketUsage]:
    """Objects and bytes in each of the worker's buckets, for `status` and the dashboard: from the folders under
    WORKER_DATA_DIR/storage with local storage, from storage.objects otherwise. Raise DatabaseUnavailable."""
    if settings.local_storage and storage_refusal(settings) is None:
        root = local_storage_root(settings)
        listed = {bucket: list_folder_objects(root / bucket, "", TEMP_PREFIX) for bucket in BUCKETS}
        return [BucketUsage(b, len(listed[b]), sum(o.size for o in listed[b])) for b in BUCKETS]
    with RetentionStore(db_url) as store:
        return store.bucket_usage(list(BUCKETS))
