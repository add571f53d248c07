"""Worker presence in public.media_workers, and the take-back of jobs of this host's dead workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from worker.db import queries, queries_operations
from worker.db.jobs import JobStore
from worker.process_identity import ProcessIdentity


@dataclass(frozen=True)
class WorkerRegistration:
    """What a worker says of itself in its presence row."""

    id: str
    identity: ProcessIdentity
    started_at: datetime
    version: str
    concurrency: int
    job_types: tuple[str, ...]
    ffmpeg_path: str


@dataclass(frozen=True)
class WorkerRow:
    """A presence row as `workers` lists it, with the jobs its worker holds."""

    id: str
    identity: ProcessIdentity
    version: str | None
    concurrency: int
    job_types: tuple[str, ...]
    ffmpeg_path: str | None
    state: str
    age_seconds: float
    seen_seconds_ago: float
    jobs: list[dict[str, Any]]


@dataclass(frozen=True)
class TakenBack:
    """A job given back to the queue because its worker's process ended."""

    id: UUID
    type: str
    attempt: int
    status: str  # pending, or cancelled when a cancel request was waiting


def identity_of(row: dict[str, Any]) -> ProcessIdentity:
    return ProcessIdentity(row["host"], row["pid"], row["boot_id"], row["pid_namespace"], row["process_start"])


class WorkerStore(JobStore):
    """A JobStore that also keeps presence rows: the daemon's maintenance connection, and the CLI's."""

    def register_worker(self, me: WorkerRegistration, state: str = "running") -> None:
        """Insert this worker's row, or refresh it if it is there already."""
        self._execute(queries_operations.REGISTER_WORKER, {
            "id": me.id, "host": me.identity.host, "pid": me.identity.pid, "boot_id": me.identity.boot_id,
            "pid_namespace": me.identity.pid_namespace, "process_start": me.identity.start_ticks,
            "started_at": me.started_at, "version": me.version, "concurrency": me.concurrency,
            "job_types": list(me.job_types), "ffmpeg_path": me.ffmpeg_path, "state": state})

    def renew_presence(self, worker_id: str, state: str) -> bool:
        """Renew last_seen_at and set the state; False when the row is gone."""
        return bool(self._execute(queries_operations.RENEW_WORKER, {"id": worker_id, "state": state}))

    def delete_worker(self, worker_id: str) -> None:
        self._execute(queries_operations.DELETE_WORKER, {"id": worker_id})

    def host_workers(self, host: str, exclude: str) -> dict[str, ProcessIdentity]:
        """The other registered workers of `host`, by id."""
        rows = self._execute(queries_operations.HOST_WORKERS, {"host": host, "id": exclude})
        return {row["id"]: identity_of(row) for row in rows}

    def take_back_jobs_of(self, worker_ids: list[str]) -> list[TakenBack]:
        """Give the jobs leased to these (ended) workers back to the queue and delete their rows."""
        rows = self._execute(queries.TAKE_BACK_ENDED_WORKERS_JOBS, {"workers": worker_ids})
        return [TakenBack(row["id"], row["type"], row["attempts"], row["status"]) for row in rows]

    def list_workers(self) -> list[WorkerRow]:
        return [WorkerRow(row["id"], identity_of(row), row["version"], row["concurrency"], tuple(row["job_types"]),
                          row["ffmpeg_path"], row["state"], float(row["age_seconds"]),
                          float(row["seen_seconds_ago"]), row["jobs"])
                for row in self._execute(queries_operations.LIST_WORKERS, {})]

    def recent_workers(self, seen_seconds: float) -> list[tuple[ProcessIdentity, tuple[str, ...]]]:
        """Workers seen within `seen_seconds`: their identity and the types they take (empty: all)."""
        rows = self._execute(queries_operations.RECENT_WORKERS, {"seen_seconds": seen_seconds})
        return [(identity_of(row), tuple(row["job_types"])) for row in rows]

    def delete_stale_workers(self, stale_seconds: float) -> int:
        """Delete presence rows not renewed for `stale_seconds`; how many went."""
        return len(self._execute(queries_operations.DELETE_STALE_WORKERS, {"stale_seconds": stale_seconds}))
