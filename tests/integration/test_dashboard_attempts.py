"""The job page's attempts and stage times in a real browser, for a job a real worker retried once."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support import dashboard as fixtures
from tests.support.dashboard import running_dashboard
from tests.support.workers import insert_job, job_row, start_worker, wait_for_status, worker_env

pytestmark = pytest.mark.slow
browser, page = fixtures.browser, fixtures.page  # the headless chromium and a fresh page per test


def test_a_job_retried_once_shows_both_attempts_with_their_worker_start_and_stages(
        db_url: str, data_dir: Path, tmp_path: Path, page: Any) -> None:
    job_id = insert_job(db_url, "test.flaky_once", {"marker": str(tmp_path / "first-attempt-ran")})
    env = worker_env(db_url, data_dir, WORKER_HEARTBEAT_SECONDS=0.5, WORKER_HANDLER_MODULES="tests.lifecycle_handlers")
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        assert wait_for_status(db_url, job_id, {"completed", "failed"})["status"] == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    row = job_row(db_url, job_id)
    claims = [e for e in row["stage_history"] if e["stage"] == "claimed"]
    assert len(claims) == 2 and all(c["worker"] for c in claims)
    with running_dashboard(env, tmp_path / "dashboard.log") as base:
        page.goto(f"{base}/jobs/{job_id}")
        rows = page.locator("table.attempts tr[data-attempt]")
        assert rows.count() == 2
        for index, claim in enumerate(claims, start=1):
            attempt = rows.nth(index - 1)
            assert attempt.locator("td").first.inner_text() == str(index)
            assert attempt.locator("[data-worker]").inner_text() == claim["worker"]
            assert attempt.locator("[data-started]").inner_text().strip() != ""
            table = page.locator(f"table.stages[data-stages-of='{index}']")
            names = table.locator("tr[data-stage-name]").evaluate_all("rows => rows.map(r => r.dataset.stageName)")
            assert names[:2] == ["claimed", "processing"], names
            durations = table.locator("[data-duration]").all_inner_texts()
            assert len(durations) == len(names) and all(durations), durations  # each stage ended: it has a length
        assert "storage is down (test, first attempt)" in rows.nth(0).inner_text()
        assert "completed" in rows.nth(1).inner_text()
