"""A worker slot: one job at a time, taken from the dispatcher, run, its outcome handed back."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from worker import metrics
from worker.control import Heartbeat, JobControl
from worker.db import ClaimedJob, JobStore
from worker.errors import ShutdownRequested
from worker.logs import JOB_LOG_CONTEXT, log
from worker.outcome import Completed, Retry
from worker.runner import JobRunner

if TYPE_CHECKING:
    from worker.daemon import Worker


class Slot(threading.Thread):
    """One job at a time: take one from the dispatcher, run it, hand its outcome back, repeat.
    Each slot holds leases under its own name and has its own connection for heartbeats."""

    def __init__(self, index: int, worker: Worker) -> None:
        super().__init__(name=f"slot-{index}", daemon=True)
        self.worker = worker
        self.control: JobControl | None = None
        self.running: ClaimedJob | None = None  # the job whose outcome is not recorded yet
        # Each slot holds leases under its own name, so two slots of one process can never
        # both believe they own a job (e.g. one taking back the other's expired lease).
        self.store = JobStore(worker.db_url, f"{worker.worker_id}/{index}", worker.settings.worker_lease_seconds)
        self.heartbeat = Heartbeat(self.store, worker.settings.worker_heartbeat_seconds,
                                   worker.settings.worker_lease_seconds, name=f"heartbeat-{index}")
        self.runner = JobRunner(self.store, worker.storage_factory(), worker.settings, worker.media, self.heartbeat,
                                on_finished=worker.notifier.submit if worker.notifier else None,
                                storage_factory=worker.storage_factory)  # a backend per upload thread

    @property
    def holder(self) -> str:
        """The lease holder id this slot's jobs are leased to."""
        return self.store.worker_id

    def run(self) -> None:
        # A bug in one job must not take the slot down with it: log, pause, carry on.
        self.heartbeat.start()
        try:
            while not self.worker.stopping.is_set():
                try:
                    self._loop()
                    return
                except Exception as exc:  # noqa: BLE001
                    log.exception("slot_crashed")
                    self.control = None
                    self._recover_from_crash(exc)
                    self.worker.stopping.wait(1.0)
        finally:
            self.heartbeat.close()
            self.store.close()

    def _recover_from_crash(self, exc: Exception) -> None:
        """The job that crashed the slot counts the attempt, so a bug cannot loop on it forever;
        any job the slot had just been handed goes back to pending now instead of waiting out its lease."""
        dispatcher, job, self.running = self.worker.dispatcher, self.running, None
        dispatcher.forget_claims(self.holder, keep=job.id if job else None)
        if job is not None:
            outcome = Retry(f"internal error: the worker slot crashed: {exc!r}", self.runner.retry_delay(job))
            dispatcher.record(self.holder, job.id, outcome, claim_next=False)

    def _loop(self) -> None:
        job: ClaimedJob | None = None
        while True:
            if job is None:
                job = self.worker.dispatcher.next_job(self.holder)
                if job is None and not self._took_back_at_idle():
                    return  # stopping, or idle with --until-idle
                if job is None:
                    continue
            job = self._run_job(job)

    def _took_back_at_idle(self) -> bool:
        """--until-idle found nothing claimable: before exiting, take back the jobs of this host's
        dead workers (they would otherwise wait for their lease); True if any came back."""
        if self.worker.stopping.is_set() or not self.worker.until_idle:
            return False
        return self.worker.presence.take_back_lost_jobs("when_idle") > 0

    def _run_job(self, job: ClaimedJob) -> ClaimedJob | None:
        """Run one job and have its outcome recorded; return the next job, if the same round claimed one."""
        self.running = job
        metrics.JOBS_CLAIMED.labels(job.type).inc()
        self.control = JobControl()
        if self.worker.stopping.is_set():  # claimed just as shutdown began: give it straight back
            self.control.interrupt(ShutdownRequested("worker is shutting down"))
        # One variable, set and reset by token: structlog's bound_contextvars copied the whole
        # context twice, a fifth of the time from a job's claim to its handler.
        context = {"job_id": str(job.id), "job_type": job.type, "attempt": job.attempts}
        token = JOB_LOG_CONTEXT.set(context)
        if job.taken_back:  # its worker's lease ran out while it was running
            metrics.JOBS_TAKEN_BACK.labels("lease_expired").inc()
            log.info("job_taken_back", reason="lease_expired")
        try:
            started = time.monotonic()
            outcome = self.runner.run(job, self.control, context)
            # Claim the next job in the same round only when nothing follows the record: it has
            # no heartbeat until it runs.
            chain = not (isinstance(outcome, Completed) and outcome.input_to_delete)
            recorded = self.worker.dispatcher.record(self.holder, job.id, outcome, claim_next=chain)
            self.running = self.control = None
            self.runner.conclude(job, outcome, recorded.state, time.monotonic() - started)
            return recorded.next_job
        finally:
            JOB_LOG_CONTEXT.reset(token)
