"""LISTEN media_jobs on a dedicated connection and wake idle slots.

The connection runs nothing but LISTEN: psycopg >= 3.2 holds the connection's lock while
it waits for notifications. A notification is only a hint; slots still poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from utils.backoff import backoff_delay
from worker.db.connection import CONNECTION_ERRORS, connect, first_line
from worker.errors import DatabaseUnavailable
from worker.logs import log

CHANNEL_LISTEN = "listen media_jobs"
WAIT_SECONDS = 1.0


class JobNotifications(threading.Thread):
    """Calls `wake()` whenever a job of one of `types` (all if empty) becomes pending."""

    def __init__(self, url: str, types: tuple[str, ...], wake: Callable[[], None]) -> None:
        super().__init__(name="listener", daemon=True)
        self.url, self.types, self.wake = url, set(types), wake
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=WAIT_SECONDS * 3)

    def run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                with connect(self.url, application_name="media-worker-listen") as conn:
                    conn.execute(CHANNEL_LISTEN)
                    if failures:
                        log.info("listener_reconnected")
                        self.wake()  # notifications sent while we were away are lost: look now
                    failures = 0
                    self._listen(conn)
            except (DatabaseUnavailable, *CONNECTION_ERRORS) as exc:
                failures += 1
                delay = backoff_delay(failures, 0.5, 30.0)
                log.warning("listener_disconnected", error=first_line(exc), retry_in=round(delay, 1))
                self._stopped.wait(delay)

    def _listen(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        while not self._stopped.is_set():
            for note in conn.notifies(timeout=WAIT_SECONDS):
                if not self.types or note.payload in self.types:
                    self.wake()
