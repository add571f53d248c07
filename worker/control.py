"""A running job's shared state, and the heartbeat that renews its lease.

The runner thread reports progress into `JobControl`; the heartbeat thread writes it to
the row while renewing the lease, and turns a cancel request, a lost lease or a
shutdown into an interrupt that the runner (and ffmpeg's supervisor) checks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from worker.db import JobStore
from worker.errors import CancelRequested, DatabaseUnavailable, JobInterrupted, LeaseLost
from worker.logs import JOB_LOG_CONTEXT, log

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


def renewal_due(progress: float, stage: str, written: tuple[float, str], last_write: float, now: float,
                interval: float, interrupted: JobInterrupted | None) -> bool:
    """Whether a heartbeat should write now: the progress moved a step or the stage changed since
    `written` (the last (progress, stage) written), or `interval` seconds passed since `last_write`.

    Renewals go on after a cancel or shutdown request: the job still needs its lease until the
    runner has stopped it and written the outcome. Only a lost lease ends them."""
    if isinstance(interrupted, LeaseLost):
        return False
    moved = abs(progress - written[0]) >= PROGRESS_STEP or stage != written[1]
    return moved or now - last_write >= interval


@dataclass
class _Watch:
    """The job a heartbeat is renewing, and what it last wrote."""

    job_id: UUID
    control: JobControl
    context: dict[str, Any]
    last_ok: float = field(default_factory=time.monotonic)
    last_write: float = field(default_factory=time.monotonic)
    written: tuple[float, str] = (-1.0, "")


class Heartbeat(threading.Thread):
    """One per slot: renews the running job's lease every WORKER_HEARTBEAT_SECONDS and
    publishes its progress more often (throttled). A long-lived thread, so starting a job
    costs no thread start-up."""

    def __init__(self, store: JobStore, interval_seconds: float, lease_seconds: float, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.store, self.interval, self.lease_seconds = store, interval_seconds, lease_seconds
        self._watch: _Watch | None = None
        self._lock = threading.Lock()  # held while a renewal is in flight
        self._closed = threading.Event()

    def attach(self, job_id: UUID, control: JobControl, log_context: dict[str, Any]) -> None:
        """Renew this job's lease from now on; its log lines carry `log_context`."""
        with self._lock:
            self._watch = _Watch(job_id, control, log_context)

    def detach(self) -> None:
        """Stop renewing; returns after any renewal in flight, so no write follows the job's end."""
        with self._lock:
            self._watch = None

    def close(self) -> None:
        self._closed.set()
        self.join()

    def run(self) -> None:
        tick = min(self.interval, PROGRESS_MIN_INTERVAL_SECONDS)
        while not self._closed.wait(tick):
            with self._lock:
                if self._watch is not None and self._due(self._watch):
                    token = JOB_LOG_CONTEXT.set(self._watch.context)
                    try:
                        self._beat(self._watch)
                    except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                        log.exception("heartbeat_error")
                    finally:
                        JOB_LOG_CONTEXT.reset(token)

    def _due(self, watch: _Watch) -> bool:
        return renewal_due(watch.control.progress, watch.control.stage, watch.written, watch.last_write,
                           time.monotonic(), self.interval, watch.control.interrupted)

    def _beat(self, watch: _Watch) -> None:
        now = watch.last_write = time.monotonic()
        state = (watch.control.progress, watch.control.stage)
        try:
            cancel_requested_at = self.store.renew_lease(watch.job_id, round(state[0], 1), state[1])
        except LeaseLost as exc:
            log.warning("lease_lost", reason="renewal updated no row")
            watch.control.interrupt(exc)
            return
        except DatabaseUnavailable as exc:
            log.warning("heartbeat_failed", error=str(exc))
            if now - watch.last_ok > self.lease_seconds:
                watch.control.interrupt(LeaseLost("the lease could not be renewed before it expired "
                                                  "(database unreachable)"))
            return
        watch.last_ok, watch.written = now, state
        if cancel_requested_at is not None:
            watch.control.interrupt(CancelRequested("cancelled by request"))
