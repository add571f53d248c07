"""Webhook delivery for finished jobs, off the job slots, at least once.

The runner hands over the id of every completed, failed or cancelled job. A background
thread loads the final row, signs and POSTs the event (utils.webhooks), and records
`webhook_sent_at`. An event that could not be delivered stays unmarked, and the daemon's
sweep hands it over again later (from any worker), so a worker that dies mid-delivery
loses nothing. The event id is derived from the row, so every redelivery carries the same
`webhook-id` and receivers can dedupe. A failing webhook never changes a job's status.
"""

from __future__ import annotations

import queue
import threading
from uuid import UUID

import structlog

from utils.webhooks import build_event, deliver
from worker import metrics
from worker.db import Job, JobStore
from worker.errors import DatabaseUnavailable
from worker.logs import log


class WebhookNotifier(threading.Thread):
    """Delivers job events to WEBHOOK_URL from one daemon thread."""

    def __init__(self, store: JobStore, url: str, secret: str) -> None:
        super().__init__(name="webhooks", daemon=True)
        self.store, self.url, self.secret = store, url, secret
        self._queue: queue.Queue[UUID | None] = queue.Queue()
        self._pending: set[UUID] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def submit(self, job_id: UUID) -> None:
        """Queue a finished job's event (once, however often it is submitted)."""
        with self._lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
        self._queue.put(job_id)

    def sweep(self) -> None:
        """Re-submit finished jobs whose event was never sent (their worker died delivering)."""
        try:
            for job in self.store.unsent_webhooks():
                self.submit(job.id)
        except DatabaseUnavailable as exc:
            log.warning("webhook_sweep_skipped", error=str(exc))
        except Exception:  # noqa: BLE001 - the sweep runs on the main loop, which must not die
            log.exception("webhook_sweep_error")

    def stop(self) -> None:
        """Stop after the delivery in flight; queued events stay unsent for a later sweep."""
        self._stopping.set()
        self._queue.put(None)
        self.join(timeout=10)
        self.store.close()

    def run(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._send(job_id)
            except DatabaseUnavailable as exc:
                log.warning("webhook_deferred", job_id=str(job_id), error=str(exc))
            except Exception:  # noqa: BLE001 - one bad event must not stop every later one
                log.exception("webhook_error", job_id=str(job_id))
            finally:
                with self._lock:
                    self._pending.discard(job_id)

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # a shutdown cuts the backoff short

    def _send(self, job_id: UUID) -> None:
        job = self.store.get_job(job_id)
        if job is None or job.completed_at is None or job.webhook_sent_at is not None:
            return
        with structlog.contextvars.bound_contextvars(job_id=str(job.id), job_type=job.type):
            result = deliver(self.url, self.secret, job_event(job), sleep=self._pause)
            if result.delivered or result.status is not None and 400 <= result.status < 500 \
                    and result.status != 429:
                # Delivered, or refused for good (4xx): sending it again cannot help.
                self.store.mark_webhook_sent(job.id)
            metrics.WEBHOOKS.labels("delivered" if result.delivered else "failed").inc()
            log.info("webhook_sent" if result.delivered else "webhook_failed", event_id=result.event_id,
                     attempts=result.attempts, http_status=result.status, reason=result.reason)


def job_event(job: Job) -> dict[str, object]:
    """The signed event body for a finished job; stable for a given final row."""
    assert job.completed_at is not None
    return build_event(job_id=str(job.id), job_type=job.type, status=job.status,
                       user_id=str(job.user_id) if job.user_id else None, result=job.result, error=job.error,
                       attempts=job.attempts, finished_at_iso=job.completed_at.isoformat())
