"""The operator dashboard's reads (worker/db/queries_dashboard.py), on a WorkerStore.

Its actions are the CLI's (JobStore.retry_job, JobStore.request_cancel), and so is its list of workers
(WorkerStore.list_workers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from worker.db import queries_dashboard, queries_operations
from worker.db.workers import WorkerStore


@dataclass(frozen=True)
class JobFilter:
    """The jobs page's filters; None means "any"."""

    status: str | None = None
    type: str | None = None
    owner: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {"status": self.status, "type": self.type, "owner": self.owner, "since": self.since,
                "until": self.until}


@dataclass(frozen=True)
class Cursor:
    """Where a page of jobs starts: just after this (created_at, id), newest first."""

    created_at: datetime
    id: UUID


class DashboardStore(WorkerStore):
    """The dashboard's connection: custom plans for its optional filters (see queries_dashboard)."""

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        fresh = self._conn is None or self._conn.closed or self._conn.broken
        conn = super()._connection()
        if fresh:
            conn.execute(queries_dashboard.CUSTOM_PLANS)
        return conn

    def live_counts(self) -> list[dict[str, Any]]:
        """Pending and processing jobs by type and status, with each type's oldest pending job's age in seconds."""
        return self._execute(queries_dashboard.LIVE_COUNTS, {})

    def all_time_counts(self) -> list[dict[str, Any]]:
        """Jobs by type and status over the whole table (`status`'s count): reads every row, so the
        dashboard runs it in the background (worker/dashboard/totals.py)."""
        return self._execute(queries_operations.QUEUE_COUNTS, {})

    def estimated_rows(self) -> int:
        """About how many rows media_jobs holds (the planner's estimate)."""
        return int(self._execute(queries_dashboard.ESTIMATED_ROWS, {})[0]["jobs"])

    def finished_by_hour(self) -> list[dict[str, Any]]:
        """The last 24 hours' ended jobs per type and hour (hours_ago None: the whole day)."""
        return self._execute(queries_dashboard.FINISHED_BY_HOUR, {})

    def jobs_page(self, where: JobFilter, after: Cursor | None, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` jobs matching `where`, newest first, after the cursor."""
        return self._execute(queries_dashboard.JOBS_PAGE, {
            **where.params(), "limit": limit, "after_at": after.created_at if after else None,
            "after_id": after.id if after else None})

    def failed_matching(self, where: JobFilter, limit: int) -> list[UUID]:
        """The ids of up to `limit` failed jobs matching `where` (its status is ignored), oldest first."""
        rows = self._execute(queries_dashboard.FAILED_MATCHING, {**where.params(), "limit": limit})
        return [row["id"] for row in rows]

    def job_types(self) -> list[str]:
        return [row["type"] for row in self._execute(queries_dashboard.JOB_TYPES, {})]
