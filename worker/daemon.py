"""The worker process: capture signals, start up, run slots until told to stop, shut down.

Signal handlers only set flags. The first SIGTERM/SIGINT stops claiming and gives
running jobs WORKER_SHUTDOWN_TIMEOUT_SECONDS to finish, then releases them. A second
signal releases them at once (ffmpeg's process group is killed by its supervisor).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from handlers.base import MediaSettings
from utils.storage import Storage
from worker import metrics, retention
from worker.config import Settings
from worker.db import JobStore, WorkerStore, is_transaction_pooler
from worker.db.listener import JobNotifications
from worker.dispatcher import Dispatcher
from worker.errors import DatabaseUnavailable, ShutdownRequested
from worker.health import HealthServer, HealthState
from worker.logs import log
from worker.notifier import WebhookNotifier
from worker.presence import STALE_ROW_LEASES, Presence, live_job_types, live_seconds
from worker.process_identity import workers_by_type
from worker.slot import Slot
from worker.workdir import remove_stale_work_dirs

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_STARTUP_FAILED = 3
HOUSEKEEPING_INTERVAL_SECONDS = 300.0
QUEUE_SAMPLE_SECONDS = 15.0
WEBHOOK_SWEEP_SECONDS = 60.0


class Worker:
    """The daemon: slots, the dispatcher that claims for them, and the shutdown sequence."""

    def __init__(self, settings: Settings, db_url: str, media: MediaSettings, worker_id: str,
                 storage_factory: Callable[[], Storage], until_idle: bool = False,
                 health: HealthState | None = None) -> None:
        self.settings, self.db_url, self.media, self.worker_id = settings, db_url, media, worker_id
        self.storage_factory = storage_factory
        self.health = health
        self.health_server: HealthServer | None = None
        # Housekeeping, presence and metric samples share one connection, reopened after a loss.
        self.maintenance = WorkerStore(db_url, worker_id, settings.worker_lease_seconds)
        self.presence = Presence(self.maintenance, worker_id, settings.worker_concurrency,
                                 settings.worker_job_types, media.accel.name)
        self.notifier = WebhookNotifier(JobStore(db_url, worker_id, settings.worker_lease_seconds),
                                        settings.webhook_url, settings.webhook_secret or "") \
            if settings.webhook_url else None
        self.until_idle = until_idle
        self.stopping = threading.Event()
        self.signals_received = 0
        self.slots = [Slot(i, self) for i in range(settings.worker_concurrency)]
        # LISTEN for instant wake-ups, except behind a transaction pooler and in --until-idle runs.
        listen = not until_idle and not is_transaction_pooler(db_url)
        self.dispatcher = Dispatcher(JobStore(db_url, worker_id, settings.worker_lease_seconds),
                                     settings.worker_job_types, settings.worker_poll_interval_seconds,
                                     JobNotifications(db_url, settings.worker_job_types) if listen else None,
                                     self.stopping, until_idle, settings.worker_max_running_per_user)

    def run(self) -> int:
        """Run until idle (if asked) or until signalled; return the exit code."""
        previous = capture_signals(self._on_signal)
        try:
            self._start()
            self._main_loop()
        finally:
            self._shutdown()
            restore_signals(previous)
        return EXIT_OK

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals_received += 1
        self.stopping.set()

    def _start(self) -> None:
        for path in remove_stale_work_dirs(self.settings.worker_temp_dir):
            log.info("stale_work_dir_removed", path=str(path))
        if is_transaction_pooler(self.db_url):
            log.warning("transaction_pooler_detected",
                        detail="LISTEN and prepared statements are off; jobs are found by polling every "
                               f"{self.settings.worker_poll_interval_seconds}s. Use the session pooler "
                               "(port 5432) or a direct connection for instant wake-ups.")
        if self.notifier is not None:
            self.notifier.start()
        if self.health is not None and self.settings.health_port:
            self.health_server = HealthServer(self.settings.health_port, self.health)
            self.health_server.start()
        log.info("worker_started", worker_id=self.worker_id, concurrency=len(self.slots),
                 job_types=list(self.settings.worker_job_types) or "all")
        if self.presence.register():
            self.presence.take_back_lost_jobs("at_start")  # a worker of this host killed a moment ago (systemd restart)
        self.dispatcher.start()
        for slot in self.slots:
            slot.start()

    def _main_loop(self) -> None:
        deadline: float | None = None
        next_housekeeping = next_sample = next_sweep = time.monotonic()
        next_presence = next_housekeeping + self.settings.worker_heartbeat_seconds
        while any(slot.is_alive() for slot in self.slots):
            time.sleep(0.1)
            if self.health is not None:
                self.health.tick()
            if not self.stopping.is_set():
                now = time.monotonic()
                if now >= next_presence:
                    next_presence = now + self.settings.worker_heartbeat_seconds
                    # With the database away, one try per period: the main loop must keep ticking.
                    if self.presence.renew():
                        self.presence.take_back_lost_jobs("while_running")
                if now >= next_housekeeping:
                    next_housekeeping = now + HOUSEKEEPING_INTERVAL_SECONDS
                    self._housekeeping()
                if self.notifier is not None and now >= next_sweep:
                    next_sweep = now + WEBHOOK_SWEEP_SECONDS
                    self.notifier.sweep()
                if now >= next_sample:
                    next_sample = now + QUEUE_SAMPLE_SECONDS
                    self._sample_queue_depth()
                continue
            if deadline is None:
                deadline = time.monotonic() + self.settings.worker_shutdown_timeout_seconds
                log.info("shutdown_started", running=self._running_count(),
                         timeout_seconds=self.settings.worker_shutdown_timeout_seconds,
                         hint="running jobs may finish until the timeout; a second SIGINT/SIGTERM releases them at once")
                self.dispatcher.wake()
                self.presence.renew("draining")
            if self.signals_received > 1 or time.monotonic() >= deadline:
                self._interrupt_running("worker is shutting down")

    def _housekeeping(self) -> None:
        """Delete finished jobs past retention, if no other worker is doing it right now, and the
        presence rows of workers not seen for several leases; start the storage retention pass."""
        try:
            # With OUTPUT_RETENTION_FOLLOWS_JOBS the storage pass deletes expired rows, their outputs first.
            deleted = None if self.settings.output_retention_follows_jobs else self.maintenance.delete_old_jobs(
                self.settings.job_retention_days, self.settings.job_failed_retention_days)
            retention.start_pass(self.settings, self.db_url, self.storage_factory, self.stopping)
            if deleted:
                log.info("old_jobs_deleted", jobs=deleted)
            gone = self.maintenance.delete_stale_workers(STALE_ROW_LEASES * self.settings.worker_lease_seconds)
            if gone:
                log.info("stale_workers_deleted", workers=gone)
        except DatabaseUnavailable as exc:
            log.warning("housekeeping_skipped", error=str(exc))
        except Exception:  # noqa: BLE001 - maintenance must never take the daemon down
            log.exception("housekeeping_error")

    def _sample_queue_depth(self) -> None:
        """The queue depth and live-worker gauges, for /metrics."""
        if self.health_server is None:
            return
        try:
            depths = self.maintenance.queue_depth()
            metrics.set_queue_depth(depths)
            window = live_seconds(self.settings.worker_heartbeat_seconds, self.settings.worker_lease_seconds)
            metrics.set_workers_live(workers_by_type(live_job_types(self.maintenance, window), depths))
        except DatabaseUnavailable:
            pass  # /readyz reports the database; the gauge keeps its last sample
        except Exception:  # noqa: BLE001 - a metric sample must never take the daemon down
            log.exception("queue_sample_error")

    def _running_count(self) -> int:
        return sum(1 for slot in self.slots if slot.control is not None)

    def _interrupt_running(self, reason: str) -> None:
        for slot in self.slots:
            if slot.control is not None and not slot.control.should_stop():
                log.info("releasing_job", slot=slot.name, job_id=str(slot.running.id) if slot.running else None)
                slot.control.interrupt(ShutdownRequested(reason))

    def _shutdown(self) -> None:
        self.stopping.set()
        self.dispatcher.wake()
        for slot in self.slots:
            if slot.is_alive():
                slot.join()
        self.dispatcher.close()
        if self.notifier is not None:
            self.notifier.stop()
        if self.health_server is not None:
            self.health_server.stop()
        if self.until_idle and not self.signals_received:
            self._report_jobs_not_claimable_yet()
        self.presence.leave()
        self.maintenance.close()
        log.info("worker_stopped", worker_id=self.worker_id)

    def _report_jobs_not_claimable_yet(self) -> None:
        """--until-idle ends when nothing is claimable now; say what is not claimable yet (a killed
        worker's job comes back only when its lease runs out, a retry only after its backoff)."""
        try:
            left = self.maintenance.not_yet_claimable(self.settings.worker_job_types)
        except Exception:  # noqa: BLE001 - a courtesy message must not fail the run
            return
        if left["leased"] or left["waiting"]:
            log.info("jobs_not_claimable_yet", leased_to_other_workers=left["leased"],
                     first_lease_ends_in_seconds=_seconds(left["lease_ends_in_seconds"]),
                     waiting_for_retry=left["waiting"], first_retry_in_seconds=_seconds(left["next_due_in_seconds"]),
                     hint="run again once they are due, or run without --until-idle")


def _seconds(value: Any) -> float | None:
    """A Postgres interval in seconds (a Decimal), for a log line."""
    return None if value is None else round(max(float(value), 0.0), 1)


SignalHandler = Callable[[int, FrameType | None], None]


def capture_signals(handler: SignalHandler) -> dict[int, object]:
    """Route SIGTERM and SIGINT to handler; return the previous handlers."""
    previous: dict[int, object] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    return previous


def restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]
