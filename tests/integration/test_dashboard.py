"""The operator dashboard in a real browser (headless chromium), on jobs run by a real worker process."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support import dashboard as fixtures
from tests.support.dashboard import running_dashboard
from tests.support.media import ffprobe_json
from tests.support.workers import (
    ffmpeg_pids_for,
    insert_job,
    job_row,
    put_local_object,
    start_worker,
    wait_for_status,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow
browser, page = fixtures.browser, fixtures.page  # the headless chromium and a fresh page per test
HANDLERS = {"WORKER_HANDLER_MODULES": "tests.lifecycle_handlers"}


def stop(worker: Any) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=30)


def test_overview_and_jobs_show_a_processed_job_with_its_poster(db_url: str, data_dir: Path, tmp_path: Path,
                                                                 sample_clip: Path, page: Any) -> None:
    put_local_object(data_dir, "media-uploads", "anonymous/clip.mp4", sample_clip)
    job_id = insert_job(db_url, "video.process", {"input": {"bucket": "media-uploads", "path": "anonymous/clip.mp4"},
                                                  "thumbnails": 2})
    env = worker_env(db_url, data_dir)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_for_status(db_url, job_id, {"completed"}, timeout=120)
        with running_dashboard(env, tmp_path / "dashboard.log") as base:
            page.goto(base + "/")
            section = page.locator("section.type[data-type='video.process']")
            assert section.locator("table.counts td").first.inner_text() == "0"  # pending
            assert section.locator("table.window tr").nth(1).locator("td").first.inner_text() == "1"  # last hour
            assert page.locator("[data-total=completed]").inner_text() == "1"
            page.goto(base + "/jobs")
            row = page.locator(f"tr[data-job='{job_id}']")
            assert "completed" in row.inner_text()
            row.locator("a").click()
            poster = page.locator("img[data-kind=poster]")
            poster.wait_for()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=poster.element_handle())
            size = poster.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            stored = data_dir / "storage" / "media-outputs" / "anonymous" / job_id / "poster.jpg"
            video = ffprobe_json(stored)["streams"][0]
            assert size == [video["width"], video["height"]]
            assert page.locator("img[data-kind=thumbnail]").count() == 2
    finally:
        stop(worker)


def test_retrying_a_failed_job_from_the_page_runs_it_again(db_url: str, data_dir: Path, tmp_path: Path,
                                                           sample_clip: Path, page: Any) -> None:
    job_id = insert_job(db_url, "media.probe", {"input": {"bucket": "media-uploads", "path": "anonymous/late.mp4"}})
    env = worker_env(db_url, data_dir)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        assert "does not exist" in wait_for_status(db_url, job_id, {"failed"})["error"]
        put_local_object(data_dir, "media-uploads", "anonymous/late.mp4", sample_clip)  # the upload arrives late
        with running_dashboard(env, tmp_path / "dashboard.log") as base:
            page.goto(f"{base}/jobs/{job_id}")
            page.get_by_role("link", name="Retry…").click()
            page.get_by_role("button", name="Retry").click()
            assert "pending again" in page.get_by_role("status").inner_text()
            assert wait_for_status(db_url, job_id, {"completed", "failed"})["status"] == "completed"
            # The live part of the page catches up without a reload.
            page.locator("[data-status]", has_text="completed").wait_for()
    finally:
        stop(worker)


def test_cancelling_a_running_job_from_the_page_stops_it_within_the_heartbeat(
        db_url: str, data_dir: Path, tmp_path: Path, page: Any) -> None:
    job_id = insert_job(db_url, "test.slow", {"seconds": 60})
    env = worker_env(db_url, data_dir, WORKER_HEARTBEAT_SECONDS=0.5, **HANDLERS)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
        with running_dashboard(env, tmp_path / "dashboard.log") as base:
            page.goto(f"{base}/jobs?status=processing")
            page.locator(f"tr[data-job='{job_id}'] progress").wait_for()
            page.goto(f"{base}/jobs/{job_id}")
            page.get_by_role("link", name="Cancel…").click()
            page.get_by_role("button", name="Cancel").click()
            assert "Cancel requested" in page.get_by_role("status").inner_text()
            assert wait_for_status(db_url, job_id, {"cancelled", "completed", "failed"}, timeout=10)["status"] \
                == "cancelled"
            page.locator("[data-status]", has_text="cancelled").wait_for()
        wait_until(lambda: not ffmpeg_pids_for(job_id), timeout=5, what="ffmpeg to be killed")
    finally:
        stop(worker)


def test_a_script_in_an_error_or_payload_renders_as_text(db_url: str, data_dir: Path, tmp_path: Path,
                                                         page: Any) -> None:
    error = "<script>alert(1)</script>"
    payload = {"input": {"bucket": "media-uploads", "path": "anonymous/<img src=x onerror=alert(2)>.mp4"}}
    job_id = insert_job(db_url, "video.process", payload, status="failed", error=error,
                        errors=json.dumps([{"attempt": 1, "at": "2026-12-01T00:00:00+00:00", "error": error}]))
    with running_dashboard(worker_env(db_url, data_dir), tmp_path / "dashboard.log") as base:
        page.goto(f"{base}/jobs")
        assert page.locator(f"tr[data-job='{job_id}'] .error-text").inner_text() == error
        page.goto(f"{base}/jobs/{job_id}")
        assert page.locator("[data-error]").inner_text() == error
        assert "onerror=alert(2)" in page.locator("pre.json").inner_text()
        page.locator("#live[data-refreshed]").wait_for(state="attached")  # a live refresh ran, harmless too
        assert page.locator("script").count() == 1  # static/live.js only
        assert page.locator("img").count() == 0
    assert page.dialogs == []


def test_retry_every_failed_job_matching_the_filter(db_url: str, data_dir: Path, tmp_path: Path, page: Any) -> None:
    matching = [insert_job(db_url, "media.probe", {}, status="failed", error="boom") for _ in range(2)]
    other_type = insert_job(db_url, "audio.extract", {}, status="failed", error="boom")
    with running_dashboard(worker_env(db_url, data_dir), tmp_path / "dashboard.log") as base:
        page.goto(f"{base}/jobs")
        page.get_by_label("type").select_option("media.probe")
        page.get_by_role("button", name="Filter").click()
        page.get_by_role("link", name="Retry every failed job matching this filter…").click()
        assert "2 failed job(s) match; type = media.probe" in page.inner_text("main")
        page.get_by_role("button", name="Retry them").click()
        assert page.get_by_role("status").inner_text() == "2 failed job(s) are pending again."
    assert [job_row(db_url, job_id)["status"] for job_id in matching] == ["pending", "pending"]
    assert job_row(db_url, other_type)["status"] == "failed"
