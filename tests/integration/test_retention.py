"""Storage retention with local storage (issue 20): real `cleanup` and daemon processes, real PostgreSQL,
objects as files under WORKER_DATA_DIR/storage."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_operations import counter, free_port, get
from tests.support.workers import insert_job, put_local_object, run_cli, start_worker, wait_until, worker_env

pytestmark = pytest.mark.slow
HOUR = 3600.0
LEASE = 10.0  # worker_env's WORKER_LEASE_SECONDS


def put(data_dir: Path, bucket: str, path: str, age_seconds: float, data: bytes = b"x" * 1000) -> Path:
    """An object in the local backend, last written age_seconds ago."""
    put_local_object(data_dir, bucket, path, data)
    target = data_dir / "storage" / bucket / path
    stamp = time.time() - age_seconds
    os.utime(target, (stamp, stamp))
    return target


def env(db_url: str, data_dir: Path, **overrides: object) -> dict[str, str]:
    return worker_env(db_url, data_dir, UPLOAD_RETENTION_HOURS=1, **overrides)


def finished_job(db_url: str, status: str = "completed", days_ago: float = 40, **columns: object) -> str:
    """A job that ended days_ago."""
    ended = datetime.now(UTC) - timedelta(days=days_ago)
    return insert_job(db_url, "video.process", {"input": {"path": "anonymous/x/in.mp4"}}, status=status,
                      completed_at=ended, **columns)


def test_cleanup_deletes_old_unclaimed_uploads_only(db_url: str, data_dir: Path) -> None:
    abandoned = put(data_dir, "media-uploads", "anonymous/a/old.mp4", 2 * HOUR)
    pending = put(data_dir, "media-uploads", "anonymous/b/old-pending.mp4", 2 * HOUR)
    processing = put(data_dir, "media-uploads", "anonymous/c/old-processing.mp4", 2 * HOUR)
    fresh = put(data_dir, "media-uploads", "anonymous/d/fresh.mp4", 60)
    within_lease = put(data_dir, "media-uploads", "anonymous/e/just-past-retention.mp4", HOUR + LEASE / 2)
    done = put(data_dir, "media-uploads", "anonymous/f/old-done.mp4", 2 * HOUR)
    elsewhere = put(data_dir, "other-bucket", "anonymous/g/old.mp4", 2 * HOUR)
    old_output = put(data_dir, "media-outputs", "anonymous/h/video.mp4", 2 * HOUR)
    insert_job(db_url, "video.process", {"input": {"path": "anonymous/b/old-pending.mp4"}})
    insert_job(db_url, "video.process", {"input": {"bucket": "media-uploads", "path": "anonymous/c/old-processing.mp4"}},
               status="processing")
    insert_job(db_url, "video.process", {"input": {"path": "anonymous/f/old-done.mp4"}}, status="completed")

    out = run_cli(["cleanup"], env(db_url, data_dir)).stdout

    assert not abandoned.exists() and not done.exists()
    assert pending.exists() and processing.exists() and fresh.exists() and within_lease.exists()
    assert elsewhere.exists() and old_output.exists()
    assert "deleted 2 object(s)" in out


def test_dry_run_lists_what_would_go_and_deletes_nothing(db_url: str, data_dir: Path) -> None:
    abandoned = put(data_dir, "media-uploads", "anonymous/a/old.mp4", 3 * HOUR)
    fresh = put(data_dir, "media-uploads", "anonymous/d/fresh.mp4", 60)

    out = run_cli(["cleanup", "--dry-run"], env(db_url, data_dir)).stdout

    assert abandoned.exists() and fresh.exists()
    listed = [line.split() for line in out.splitlines() if "anonymous/" in line]
    assert listed == [["media-uploads", "anonymous/a/old.mp4", "1000", "B", "3.0h", "abandoned_upload"]]
    assert "would delete 1 object(s)" in out


def test_with_retention_unset_nothing_is_deleted(db_url: str, data_dir: Path) -> None:
    abandoned = put(data_dir, "media-uploads", "anonymous/a/old.mp4", 1000 * HOUR)
    out = run_cli(["cleanup"], worker_env(db_url, data_dir)).stdout
    assert abandoned.exists()
    assert "UPLOAD_RETENTION_HOURS is unset" in out


def test_outputs_follow_expired_jobs_when_asked(db_url: str, data_dir: Path, db: psycopg.Connection) -> None:
    owner = "11111111-2222-3333-4444-555555555555"
    db.execute("insert into auth.users (id) values (%s) on conflict do nothing", (owner,))
    expired, recent, failed = finished_job(db_url, user_id=owner), finished_job(db_url, days_ago=1), \
        finished_job(db_url, "failed", days_ago=40)
    outputs = [put(data_dir, "media-outputs", f"{owner}/{expired}/{name}", 40 * 86400) for name in ("a.mp4", "b.jpg")]
    kept = put(data_dir, "media-outputs", f"anonymous/{recent}/video.mp4", 86400)
    failed_kept = put(data_dir, "media-outputs", f"anonymous/{failed}/video.mp4", 40 * 86400)
    neighbour = put(data_dir, "media-outputs", f"{owner}/{expired}-not-its-folder/video.mp4", 40 * 86400)

    out = run_cli(["cleanup"], worker_env(db_url, data_dir, OUTPUT_RETENTION_FOLLOWS_JOBS="true")).stdout

    ids = {str(row["id"]) for row in db.execute("select id from public.media_jobs")}
    assert ids == {recent, failed}  # failed jobs keep JOB_FAILED_RETENTION_DAYS (90)
    assert not any(path.exists() for path in outputs)
    assert kept.exists() and failed_kept.exists() and neighbour.exists()
    assert "deleted 1 expired job row(s)" in out


def test_with_outputs_kept_expired_rows_go_and_outputs_stay(db_url: str, data_dir: Path, db: psycopg.Connection) -> None:
    expired = finished_job(db_url)
    output = put(data_dir, "media-outputs", f"anonymous/{expired}/video.mp4", 40 * 86400)
    run_cli(["cleanup"], worker_env(db_url, data_dir))
    assert db.execute("select count(*) as n from public.media_jobs").fetchone()["n"] == 0
    assert output.exists()


def test_status_shows_objects_and_bytes_per_bucket(db_url: str, data_dir: Path) -> None:
    put(data_dir, "media-uploads", "anonymous/a/in.mp4", 0, b"x" * 2048)
    put(data_dir, "media-uploads", "anonymous/b/in.mp4", 0, b"x" * 2048)
    put(data_dir, "media-outputs", "anonymous/j/video.mp4", 0, b"x" * 10)
    out = run_cli(["status"], worker_env(db_url, data_dir)).stdout
    usage = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip().startswith("media-")}
    assert usage == {"media-uploads": ["2", "objects", "4.0", "KB"], "media-outputs": ["1", "objects", "10", "B"]}


def test_the_daemon_deletes_abandoned_uploads_and_counts_the_bytes(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    abandoned = put(data_dir, "media-uploads", "anonymous/a/old.mp4", 2 * HOUR, b"x" * 1234)
    fresh = put(data_dir, "media-uploads", "anonymous/d/fresh.mp4", 60)
    port = free_port()
    worker = start_worker(env(db_url, data_dir, HEALTH_PORT=port), log_path=tmp_path / "w.log")
    try:
        wait_until(lambda: not abandoned.exists(), what="the abandoned upload to go")
        wait_until(lambda: counter(get(port, "/metrics")[1], "media_worker_storage_deleted_bytes_total",
                                   bucket="media-uploads", reason="abandoned_upload") == 1234, what="the counter")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert fresh.exists()
