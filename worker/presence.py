"""This worker's presence row, and taking back at once the jobs of this host's dead workers.

The row is inserted at start, renewed on the daemon's main-loop timer, marked 'draining' on the
first signal and deleted on a clean exit. No presence write ever stops a job: a failure is logged
and the next renewal tries again (and re-creates the row if housekeeping deleted it meanwhile).
A job leased to a worker of this host whose process has ended (judged by pid and process-start
identity, worker.process_identity) goes back to the queue now instead of after its lease.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from worker import metrics
from worker.db import WorkerRegistration, WorkerStore
from worker.errors import DatabaseUnavailable
from worker.logs import log
from worker.process_identity import Liveness, ProcessIdentity, liveness, this_process

# Housekeeping deletes presence rows not seen for this many leases.
STALE_ROW_LEASES = 5


def worker_version() -> str:
    """The project version, from pyproject.toml (the worker runs from a checkout, not a wheel)."""
    try:
        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


class Presence:
    """One worker process's row in public.media_workers, kept through `store`."""

    def __init__(self, store: WorkerStore, worker_id: str, concurrency: int, job_types: tuple[str, ...],
                 ffmpeg_path: str) -> None:
        self.store = store
        self.identity = this_process()
        self.me = WorkerRegistration(worker_id, self.identity, datetime.now(UTC), worker_version(),
                                     concurrency, job_types, ffmpeg_path)
        self.state = "running"

    def register(self) -> bool:
        """Insert the row at start; False if the database could not take it (the next renewal will)."""
        return self._write(lambda: self.store.register_worker(self.me, self.state))

    def renew(self, state: str | None = None) -> bool:
        """Renew last_seen_at (and set `state`); re-create the row if it was deleted under us.
        False if the write failed."""
        self.state = state or self.state
        return self._write(self._renew)

    def _renew(self) -> None:
        if not self.store.renew_presence(self.me.id, self.state):
            log.warning("presence_row_recreated", reason="the row was deleted while this worker ran "
                                                         "(housekeeping after a long pause?)")
            self.store.register_worker(self.me, self.state)

    def leave(self) -> None:
        """A clean exit: delete the row."""
        self._write(lambda: self.store.delete_worker(self.me.id))

    def _write(self, write: Callable[[], None]) -> bool:
        try:
            write()
            return True
        except DatabaseUnavailable as exc:
            log.warning("presence_not_written", error=str(exc))
        except Exception:  # noqa: BLE001 - presence must never take a job or the daemon down
            log.exception("presence_error")
        return False

    def take_back_lost_jobs(self, found: str) -> int:
        """Give back now the jobs of this host's workers whose process has ended; how many.
        `found` says when we looked (at_start, while_running, when_idle), for the log.
        Never raises: those jobs still come back when their lease runs out."""
        try:
            return self._take_back(found)
        except DatabaseUnavailable as exc:
            log.warning("take_back_skipped", error=str(exc))
        except Exception:  # noqa: BLE001 - as above
            log.exception("take_back_error")
        return 0

    def _take_back(self, found: str) -> int:
        others = self.store.host_workers(self.identity.host, exclude=self.me.id)
        ended = [worker_id for worker_id, identity in others.items() if self._ended(identity)]
        if not ended:
            return 0
        taken = self.store.take_back_jobs_of(ended)
        for job in taken:
            metrics.JOBS_TAKEN_BACK.labels("process_ended").inc()
            log.info("job_taken_back", job_id=str(job.id), job_type=job.type, attempt=job.attempt,
                     reason="process_ended", status=job.status)
        log.info("dead_workers_removed", workers=ended, jobs_taken_back=len(taken), found=found)
        return len(taken)

    def _ended(self, identity: ProcessIdentity) -> bool:
        return liveness(identity, self.identity) is Liveness.ENDED


def live_seconds(heartbeat_seconds: float, lease_seconds: float) -> float:
    """A worker not seen for this long is stale: three missed renewals, at most a lease."""
    return min(lease_seconds, 3 * heartbeat_seconds)


def live_job_types(store: WorkerStore, seen_seconds: float) -> list[tuple[str, ...]]:
    """The job types of each live worker (empty: every type): seen within `seen_seconds` and,
    for this host's workers, whose process still runs."""
    here = this_process()
    return [types for identity, types in store.recent_workers(seen_seconds)
            if liveness(identity, here) is not Liveness.ENDED]
