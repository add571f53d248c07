"""LISTEN media_jobs on a dedicated connection, read without blocking by the queue's thread.

The connection runs nothing but LISTEN: psycopg >= 3.2 holds the connection's lock while it
waits for notifications. The dispatcher waits on its socket together with its own wake-ups, so
a notification leads straight to a claim, with no thread in between. A notification is only a
hint; the dispatcher still polls.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from utils.backoff import backoff_delay
from worker.db.connection import connect, first_line
from worker.logs import log

CHANNEL_LISTEN = "listen media_jobs"


class JobNotifications:
    """The insert notifications for jobs of `types` (all if empty), reconnecting with backoff."""

    def __init__(self, url: str, types: tuple[str, ...]) -> None:
        # Payloads are compared as libpq hands them over: bytes, no decoding.
        self.url, self.types = url, {t.encode() for t in types}
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._failures = 0
        self._retry_at = 0.0

    def fileno(self) -> int | None:
        """The socket to wait on, or None while disconnected."""
        return self._conn.fileno() if self._conn is not None else None

    def seconds_to_reconnect(self) -> float | None:
        """While disconnected, how long until the next attempt; else None."""
        return None if self._conn is not None else max(0.0, self._retry_at - time.monotonic())

    def read(self) -> bool:
        """Read what has arrived, without blocking (connecting first if due). True when a job of
        our types may be waiting: a notification, or a reconnection that may have missed some."""
        if self._conn is None:
            return self._connect()
        matched = False
        try:
            # libpq's own calls: Connection.notifies() is a generator around a wait, four times
            # the cost, on the path from an insert to its job's start.
            pgconn = self._conn.pgconn
            pgconn.consume_input()
            while (note := pgconn.notifies()) is not None:
                matched = matched or not self.types or note.extra in self.types
        except Exception as exc:  # noqa: BLE001 - whatever broke it, a new connection is the cure
            self._lost(exc)
            return False
        return matched

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._conn = connect(self.url, application_name="media-worker-listen")
            self._conn.execute(CHANNEL_LISTEN)
        except Exception as exc:  # noqa: BLE001 - e.g. LISTEN refused on a read-only standby mid-failover
            self._lost(exc)
            return False
        if self._failures:
            log.info("listener_reconnected")
            self._failures = 0
        return True  # notifications sent while we were away are lost: look now

    def _lost(self, exc: BaseException) -> None:
        self.close()
        self._failures += 1
        delay = backoff_delay(self._failures, 0.5, 30.0)
        self._retry_at = time.monotonic() + delay
        log.warning("listener_disconnected", error=first_line(exc), retry_in=round(delay, 1))
