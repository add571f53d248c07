"""A running job's shared state, and the heartbeat that renews its lease.

The runner thread reports progress into `JobControl`; the heartbeat thread writes it to
the row while renewing the lease, and turns a cancel request, a lost lease or a
shutdown into an interrupt that the runner (and ffmpeg's supervisor) checks.
"""

from __future__ import annotations

import threading
import time
from uuid import UUID

import structlog

from worker.db import JobStore
from worker.errors import CancelRequested, DatabaseUnavailable, JobInterrupted, LeaseLost
from worker.logs import log

# Progress is written when it moved this many points, at most this often.
PROGRESS_STEP = 1.0
PROGRESS_MIN_INTERVAL_SECONDS = 1.0


class JobControl:
    """Progress, stage and the interrupt flag of one running job."""

    def __init__(self) -> None:
        self.progress = 0.0
        self.stage = "claimed"
        self._interrupt: JobInterrupted | None = None
        self._lock = threading.Lock()

    def set_stage(self, stage: str, progress: float | None = None) -> None:
        self.check()
        self.stage = stage
        if progress is not None:
            self.progress = progress

    def set_progress(self, percent: float) -> None:
        self.progress = max(0.0, min(100.0, percent))

    def interrupt(self, reason: JobInterrupted) -> None:
        """Ask the job to stop; the first reason wins, except a lost lease, which always wins."""
        with self._lock:
            if self._interrupt is None or isinstance(reason, LeaseLost):
                self._interrupt = reason

    @property
    def interrupted(self) -> JobInterrupted | None:
        return self._interrupt

    def should_stop(self) -> bool:
        return self._interrupt is not None

    def check(self) -> None:
        """Raise the pending interrupt, if any."""
        if self._interrupt is not None:
            raise self._interrupt


class Heartbeat:
    """Renews a job's lease every WORKER_HEARTBEAT_SECONDS and publishes progress more often."""

    def __init__(self, store: JobStore, job_id: UUID, control: JobControl, interval_seconds: float,
                 lease_seconds: float) -> None:
        self.store, self.job_id, self.control = store, job_id, control
        self.interval, self.lease_seconds = interval_seconds, lease_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True,
                                        kwargs={"context": structlog.contextvars.get_contextvars()})

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _loop(self, context: dict[str, object]) -> None:
        structlog.contextvars.bind_contextvars(**context)
        last_ok = last_write = time.monotonic()
        written = (-1.0, "")
        tick = min(self.interval, PROGRESS_MIN_INTERVAL_SECONDS)
        while not self._stopped.wait(tick):
            now = time.monotonic()
            state = (self.control.progress, self.control.stage)
            moved = abs(state[0] - written[0]) >= PROGRESS_STEP or state[1] != written[1]
            if not moved and now - last_write < self.interval:
                continue
            last_write = now
            try:
                cancel_requested_at = self.store.renew_lease(self.job_id, round(state[0], 1), state[1])
            except LeaseLost as exc:
                log.warning("lease_lost", reason="renewal updated no row")
                self.control.interrupt(exc)
                return
            except DatabaseUnavailable as exc:
                log.warning("heartbeat_failed", error=str(exc))
                if now - last_ok > self.lease_seconds:
                    self.control.interrupt(LeaseLost("the lease could not be renewed before it expired "
                                                     "(database unreachable)"))
                    return
                continue
            last_ok, written = now, state
            if cancel_requested_at is not None:
                self.control.interrupt(CancelRequested("cancelled by request"))
