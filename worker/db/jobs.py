"""The job queue: claim, heartbeat and finish jobs in public.media_jobs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from worker.db import queries, queries_operations
from worker.db.connection import connect, translate_errors
from worker.errors import JobRefused, LeaseLost

# The database's refusals of a new job: its validation trigger, RLS, a live dedupe_key.
INSERT_REFUSALS = (psycopg.errors.CheckViolation, psycopg.errors.InsufficientPrivilege, psycopg.errors.UniqueViolation)


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs of a job it claimed. Only these columns come back from a claim:
    decoding the whole row cost a fifth of the time from insert to start."""

    id: UUID
    user_id: UUID | None
    type: str
    priority: int
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    # The claim took it back from a worker whose lease expired (keyword-only: Job adds fields).
    taken_back: bool = field(default=False, kw_only=True)

    @property
    def owner_folder(self) -> str:
        """The storage folder this job's files belong to."""
        return str(self.user_id) if self.user_id else "anonymous"


@dataclass(frozen=True)
class Completion:
    """A job a slot finished, with the result to record."""

    job_id: UUID
    slot: str
    result: dict[str, Any]


@dataclass(frozen=True)
class Job(ClaimedJob):
    """One whole row of public.media_jobs."""

    status: str
    result: dict[str, Any] | None
    error: str | None
    errors: list[Any]
    progress: float
    stage: str | None
    run_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    cancel_requested_at: datetime | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    webhook_sent_at: datetime | None = None
    # The attempt history, for the dashboard's job page. With defaults: statements that have no use
    # for it (UNSENT_WEBHOOKS) leave it unread.
    attempt_started_at: datetime | None = None
    stage_history: list[Any] = field(default_factory=list)


class JobStore:
    """Queue operations on one autocommit connection, reopened after it is lost.

    Safe to share between a job's runner thread and its heartbeat thread: calls are
    serialised by a lock. Raises DatabaseUnavailable when the server cannot be reached.
    """

    def __init__(self, url: str, worker_id: str, lease_seconds: float) -> None:
        self.url = url
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        """The open connection, reconnecting after a loss. Call with the lock held."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.url)
        return self._conn

    def _execute(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock, translate_errors():
            cur = self._connection().execute(sql, params)
            # pgresult.nfields, not cur.description: the latter builds column objects each time.
            return cur.fetchall() if cur.pgresult is not None and cur.pgresult.nfields else []

    def _params(self, job_id: UUID, holder: str | None, **extra: Any) -> dict[str, Any]:
        return {"job_id": job_id, "holder": holder or self.worker_id, **extra}

    def complete_and_claim(self, completions: Sequence[Completion], claimers: Sequence[str],
                           types: tuple[str, ...] = (), *, max_running_per_user: int | None = None,
                           ) -> tuple[set[UUID], dict[str, ClaimedJob]]:
        """One queue round for several slots (lease holders): record their completed jobs and
        lease a job of these types (all if empty) to each claimer whose completion, if any, counted,
        in the fair order between owners, none past `max_running_per_user` jobs running (None: no cap).

        Returns the ids actually completed (the others had lost their lease) and the jobs
        claimed, by claimer."""
        common = {"lease_seconds": self.lease_seconds, "types": list(types) or None, "cap": max_running_per_user}
        if not completions and len(claimers) == 1:  # an idle slot: the leaner single claim
            rows = self._execute(queries.CLAIM_JOB, {"slot": claimers[0], **common})
            completed: set[UUID] = set()
        else:
            rows = self._execute(queries.COMPLETE_AND_CLAIM, {
                "done": Jsonb([{"id": str(c.job_id), "slot": c.slot, "result": c.result} for c in completions]),
                "claimers": Jsonb(list(claimers)), **common})
            completed = set(rows[0]["completed"] or ())
        claimed = {}
        for row in rows:
            if row["id"] is not None:
                row.pop("completed", None)
                slot = row.pop("claimed_by")
                claimed[slot] = ClaimedJob(**row)
        return completed, claimed

    def claim_next_job(self, types: tuple[str, ...] = (), *, max_running_per_user: int | None = None,
                       ) -> ClaimedJob | None:
        """Lease the next due job of these types, in the fair order, to this store's worker id, or return None."""
        return self.complete_and_claim((), (self.worker_id,), types,
                                       max_running_per_user=max_running_per_user)[1].get(self.worker_id)

    def owners_at_cap(self, max_running_per_user: int) -> list[dict[str, Any]]:
        """Owners running `max_running_per_user` jobs or more: {owner, running, waiting (due jobs held back)}."""
        return self._execute(queries.OWNERS_AT_CAP, {"cap": max_running_per_user})

    def renew_lease(self, job_id: UUID, progress: float, stage: str) -> datetime | None:
        """Extend our lease and publish progress; return cancel_requested_at. Raise LeaseLost."""
        rows = self._execute(queries.RENEW_LEASE, self._params(
            job_id, None, lease_seconds=self.lease_seconds, progress=progress, stage=stage))
        if not rows:
            raise LeaseLost("the job's lease was lost: another worker owns it now")
        cancel_requested_at: datetime | None = rows[0]["cancel_requested_at"]
        return cancel_requested_at

    def _finish(self, sql: str, job_id: UUID, holder: str | None, **params: Any) -> str:
        """Run one of the statements that end a job leased to `holder`; return the job's new status."""
        rows = self._execute(sql, self._params(job_id, holder, **params))
        if not rows:
            raise LeaseLost("the job's lease was lost before it could be finished; nothing was written")
        status: str = rows[0]["status"]
        return status

    def fail_job(self, job_id: UUID, error: str, holder: str | None = None) -> str:
        """Fail the job for good (lease holder `holder`, this store's worker id by default)."""
        return self._finish(queries.FAIL_JOB, job_id, holder, error=error)

    def fail_lost_job(self, job_id: UUID, holder: str | None = None) -> str:
        return self._finish(queries.FAIL_LOST_JOB, job_id, holder)

    def retry_or_fail_job(self, job_id: UUID, error: str, delay_seconds: float, holder: str | None = None) -> str:
        """Send the job back to pending after delay_seconds, or fail it; return the new status."""
        return self._finish(queries.RETRY_OR_FAIL_JOB, job_id, holder, error=error, delay_seconds=delay_seconds)

    def cancel_running_job(self, job_id: UUID, holder: str | None = None) -> str:
        return self._finish(queries.CANCEL_RUNNING_JOB, job_id, holder)

    def release_job(self, job_id: UUID, holder: str | None = None) -> str:
        """Give the job back without counting the attempt; "pending", or "cancelled" if a cancel was pending."""
        return self._finish(queries.RELEASE_JOB, job_id, holder)

    def release_unknown_claims(self, keep: Sequence[UUID] = (), slots: Sequence[str] | None = None) -> int:
        """Give back jobs leased to these slots (this worker id by default) other than those they
        run (`keep`): claims whose reply was lost."""
        return len(self._execute(queries.RELEASE_UNKNOWN_CLAIMS, {
            "slots": list(slots) if slots is not None else [self.worker_id], "keep": list(keep)}))

    def insert_job(self, job_type: str, payload: dict[str, Any], *, user_id: UUID | None = None,
                   priority: int = 0, max_attempts: int = 3, run_at: datetime | None = None,
                   dedupe_key: str | None = None) -> Job:
        """Insert a pending job; raise JobRefused with the database's reason and hint."""
        try:
            rows = self._execute(queries.INSERT_JOB, {
                "user_id": user_id, "type": job_type, "payload": Jsonb(payload), "priority": priority,
                "max_attempts": max_attempts, "run_at": run_at, "dedupe_key": dedupe_key})
        except INSERT_REFUSALS as exc:
            reason = " ".join(filter(None, (exc.diag.message_primary, exc.diag.message_detail, exc.diag.message_hint)))
            raise JobRefused(f"the database refused the job: {reason}") from exc
        return Job(**rows[0])

    def get_job(self, job_id: UUID | str) -> Job | None:
        rows = self._execute(queries.GET_JOB, {"job_id": job_id})
        return Job(**rows[0]) if rows else None

    def request_cancel(self, job_id: UUID | str) -> str | None:
        """Cancel a pending job, or flag a running one; return the job's status, None if no such job."""
        try:
            rows = self._execute(queries_operations.REQUEST_CANCEL, {"job_id": job_id})
        except psycopg.errors.NoDataFound:
            return None
        status: str = rows[0]["status"]
        return status

    def retry_job(self, job_id: UUID | str) -> bool:
        """Move a failed or cancelled job back to pending with its attempts reset."""
        return bool(self._execute(queries_operations.RETRY_JOB, {"job_id": job_id}))

    def queue_counts(self) -> list[dict[str, Any]]:
        return self._execute(queries_operations.QUEUE_COUNTS, {})

    def list_jobs(self, status: str | None, job_type: str | None, after: datetime | None,
                  limit: int) -> list[dict[str, Any]]:
        """The newest jobs matching the filters (None: any)."""
        return self._execute(queries_operations.LIST_JOBS, {"status": status, "type": job_type, "after": after,
                                                            "limit": limit})

    def running_jobs(self) -> list[dict[str, Any]]:
        return self._execute(queries_operations.RUNNING_JOBS, {})

    def not_yet_claimable(self, types: tuple[str, ...] = ()) -> dict[str, Any]:
        """Jobs of these types leased to other workers, or waiting for their retry time."""
        return self._execute(queries_operations.NOT_YET_CLAIMABLE, {"types": list(types) or None})[0]

    def delete_old_jobs(self, retention_days: float, failed_retention_days: float) -> int | None:
        """Delete finished jobs past retention; None when another worker holds the housekeeping lock."""
        with self._lock, translate_errors():
            conn = self._connection()
            with conn.transaction():
                row = conn.execute(queries_operations.HOUSEKEEPING_LOCK).fetchone()
                if not row or not row["locked"]:
                    return None
                cur = conn.execute(queries_operations.DELETE_OLD_JOBS, {
                    "retention_seconds": retention_days * 86400,
                    "failed_retention_seconds": failed_retention_days * 86400})
                return cur.rowcount

    def queue_depth(self) -> dict[str, int]:
        """Due pending jobs by type."""
        return {r["type"]: int(r["jobs"]) for r in self._execute(queries_operations.QUEUE_DEPTH, {})}

    def mark_webhook_sent(self, job_id: UUID) -> None:
        self._execute(queries_operations.MARK_WEBHOOK_SENT, {"job_id": job_id})

    def unsent_webhooks(self) -> list[Job]:
        return [Job(**row) for row in self._execute(queries_operations.UNSENT_WEBHOOKS, {})]

    def load_upload(self, job_id: UUID, bucket: str, path: str) -> tuple[str, int, str, bool] | None:
        """The recorded resumable upload of one output: (url, size, sha256, stored), or None."""
        rows = self._execute(queries_operations.LOAD_UPLOAD, {"job_id": job_id, "bucket": bucket, "path": path})
        return (rows[0]["upload_url"], rows[0]["size"], rows[0]["sha256"], rows[0]["stored"]) if rows else None

    def save_upload(self, job_id: UUID, bucket: str, path: str, url: str, size: int, sha256: str,
                    stored: bool = False) -> None:
        """Record an output's resumable upload (stored: the server has taken its last byte) while this
        worker holds the job."""
        self._execute(queries_operations.SAVE_UPLOAD, self._params(job_id, None, bucket=bucket, path=path, upload_url=url,
                                                         size=size, sha256=sha256, stored=stored))

    def clear_upload(self, job_id: UUID, bucket: str, path: str) -> None:
        """Forget an output's upload record (another upload of the path is about to start)."""
        self._execute(queries_operations.CLEAR_UPLOAD, self._params(job_id, None, bucket=bucket, path=path))

    def bucket_rules(self) -> dict[str, tuple[int | None, list[str] | None]]:
        """{bucket: (file_size_limit, allowed_mime_types)} from storage.buckets."""
        rows = self._execute(queries_operations.BUCKET_RULES, {})
        return {r["id"]: (r["file_size_limit"], r["allowed_mime_types"]) for r in rows}
