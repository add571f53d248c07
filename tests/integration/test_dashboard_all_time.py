"""The overview's all-time counts: every job by status, also those that ended before the last 24 hours,
counted in the background so that no page waits for a whole-table count."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.dashboard import request, running_dashboard
from tests.support.workers import insert_job, worker_env


def shown(body: str, attribute: str, status: str) -> int | None:
    found = re.search(rf'data-{attribute}="{status}">([\d,]+)<', body)
    return int(found.group(1).replace(",", "")) if found else None


def overview_once_counted(base: str) -> str:
    """The overview, once the background count is in (polled: it runs as the dashboard starts)."""
    deadline = time.monotonic() + 30
    while True:
        status, body, _ = request(base + "/")
        assert status == 200, body
        if "data-all-time=" in body:
            return body
        assert time.monotonic() < deadline, "the all-time counts never appeared"
        time.sleep(0.2)


def test_the_overview_counts_every_job_ever_as_well_as_the_last_24_hours(
        db_url: str, data_dir: Path, tmp_path: Path) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3)
    for _ in range(2):
        insert_job(db_url, "media.probe", {}, status="completed", started_at=long_ago, completed_at=long_ago)
    insert_job(db_url, "media.probe", {}, status="failed", error="old", started_at=long_ago, completed_at=long_ago)
    insert_job(db_url, "media.probe", {}, status="completed", started_at=datetime.now(UTC),
               completed_at=datetime.now(UTC))
    insert_job(db_url, "video.process", {"input": {"path": "u/a.mp4"}})
    with running_dashboard(worker_env(db_url, data_dir), tmp_path / "dashboard.log") as base:
        body = overview_once_counted(base)
    assert (shown(body, "all-time", "completed"), shown(body, "all-time", "failed")) == (3, 1)
    assert shown(body, "all-time", "pending") == 1
    assert (shown(body, "total", "completed"), shown(body, "total", "failed")) == (1, 0)  # the last 24 hours
    assert "counted" in body and "all time" in body
