"""The overview's all-time counts: jobs by type and status over the whole table, counted in the background.

Such a count reads every row (350–430 ms at 1,000,000 jobs, bench/dashboard.py), so no page waits for it:
a thread of the dashboard's own counts every REFRESH_SECONDS on a connection of its own, and the overview
shows the latest count with the time it was taken. Live figures (pending, processing, the last 24 hours)
stay exact on every page load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from worker.db.dashboard import DashboardStore
from worker.logs import log

REFRESH_SECONDS = 60.0


class AllTimeCounts:
    """The latest whole-table count by (type, status), refreshed on its own thread between start and stop."""

    def __init__(self, open_store: Callable[[], DashboardStore], every: float = REFRESH_SECONDS) -> None:
        self.open_store, self.every = open_store, every
        self.counts: dict[tuple[str, str], int] = {}
        self.as_of: datetime | None = None  # None until the first count is in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-all-time-counts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def by_status(self) -> dict[str, int]:
        """Every type's counts summed by status."""
        totals: dict[str, int] = {}
        for (_, status), jobs in self.counts.items():
            totals[status] = totals.get(status, 0) + jobs
        return totals

    def _run(self) -> None:
        store = self.open_store()
        try:
            while not self._stop.is_set():
                self._count(store)
                self._stop.wait(self.every)
        finally:
            store.close()

    def _count(self, store: DashboardStore) -> None:
        # A database away for a while leaves the last count up, with its time: the page says how old it is.
        try:
            rows = store.all_time_counts()
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failure
            log.warning("dashboard_count_failed", error=str(exc))
            return
        self.counts = {(row["type"], row["status"]): int(row["jobs"]) for row in rows}
        self.as_of = datetime.now(UTC)
