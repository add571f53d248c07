"""Take docs/dashboard.png from a real run: a worker processes a few generated clips, one job fails, one
is still running, and headless chromium photographs the dashboard's overview and jobs pages.

    TEST_DATABASE_URL=postgresql://... .venv/bin/python scripts/dashboard_screenshot.py [--out docs/dashboard.png]

Uses TEST_DATABASE_URL (a server where it may create the database mw_screenshot), else the embedded
PostgreSQL; needs ffmpeg and /usr/bin/chromium (scripts/bootstrap.sh installs both when root on Debian).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

import psycopg  # noqa: E402

from tests.support.dashboard import CHROMIUM, running_dashboard  # noqa: E402
from tests.support.media import make_clip  # noqa: E402
from tests.support.workers import insert_job, put_local_object, start_worker, wait_for_status, worker_env  # noqa: E402
from worker.db import apply_migrations  # noqa: E402


def database() -> str:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        from worker.db.embedded import start_embedded_postgres

        base = start_embedded_postgres(ROOT / ".data-screenshot")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("drop database if exists mw_screenshot with (force)")
        conn.execute("create database mw_screenshot")
    url = urlunsplit(urlsplit(base)._replace(path="/mw_screenshot"))
    apply_migrations(url)
    return url


def enqueue(url: str, data: Path) -> list[str]:
    """Three clips to process and probe, a job whose input never arrived, and a long one left running."""
    jobs = []
    for i in range(3):
        clip = make_clip(data / f"clip{i}.mp4", seconds=2 + i, size="640x360")
        put_local_object(data, "media-uploads", f"anonymous/clip{i}.mp4", clip)
        for job_type in ("video.process", "media.probe"):
            jobs.append(insert_job(url, job_type, {"input": {"bucket": "media-uploads", "path": f"anonymous/clip{i}.mp4"}}))
    jobs.append(insert_job(url, "audio.extract", {"input": {"bucket": "media-uploads", "path": "anonymous/missing.mp4"}}))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    url = database()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        env = worker_env(url, data, VIDEO_PRESET="ultrafast")
        finished = enqueue(url, data)
        worker = start_worker(env, log_path=data / "worker.log")
        try:
            for job_id in finished:
                wait_for_status(url, job_id, {"completed", "failed"}, timeout=180)
            long_clip = make_clip(data / "long.mp4", seconds=60, size="1280x720")
            put_local_object(data, "media-uploads", "anonymous/long.mp4", long_clip)
            running = insert_job(url, "video.process", {"input": {"bucket": "media-uploads", "path": "anonymous/long.mp4"}})
            wait_for_status(url, running, {"processing"})
            with running_dashboard(env, data / "dashboard.log") as base, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                page = browser.new_page(viewport={"width": 1180, "height": 900})
                page.goto(base + "/")
                page.locator("#live[data-refreshed]").wait_for(state="attached")
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            worker.send_signal(signal.SIGINT)
            worker.send_signal(signal.SIGINT)
            worker.wait(timeout=60)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
