"""Operating the worker: /metrics, /healthz, /readyz, doctor, enqueue --wait, input clean-up."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.storage_server import StorageServer
from tests.support.private_pg import PrivatePostgres
from tests.support.webhook_receiver import SECRET, Receiver, spec_verify
from tests.support.workers import (
    insert_job,
    job_row,
    put_local_object,
    run_cli,
    start_worker,
    wait_for_status,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_parse_and_count_jobs(db_url: str, data_dir: Path, tmp_path: Path, sample_clip: Path) -> None:
    port = free_port()
    put_local_object(data_dir, "media-uploads", "anonymous/m/clip.mp4", sample_clip)
    worker = start_worker(worker_env(db_url, data_dir, HEALTH_PORT=port), log_path=tmp_path / "w.log")
    try:
        wait_until(lambda: get(port, "/healthz")[0] == 200, what="/healthz")
        before = get(port, "/metrics")[1]
        assert counter(before, "media_worker_jobs_finished_total", type="video.process", status="completed") == 0
        job = insert_job(db_url, "video.process", {"input": {"path": "anonymous/m/clip.mp4"}})
        wait_for_status(db_url, job, {"completed"})
        wait_until(lambda: counter(get(port, "/metrics")[1], "media_worker_jobs_finished_total",
                                   type="video.process", status="completed") == 1, what="counter")
        after = get(port, "/metrics")[1]
        assert get(port, "/readyz") == (200, json.dumps({"database": "ok", "storage": "ok", "ffmpeg": "ok"}))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert counter(after, "media_worker_jobs_claimed_total", type="video.process") == 1
    assert counter(after, "media_worker_download_bytes_total") == sample_clip.stat().st_size
    assert counter(after, "media_worker_upload_bytes_total") > 0
    assert counter(after, "media_worker_job_duration_seconds_count", type="video.process", status="completed") == 1
    assert counter(after, "media_worker_ffmpeg_speed_ratio_count") == 1


def test_readyz_follows_the_database(private_pg: PrivatePostgres, data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    worker = start_worker(worker_env(private_pg.url, data_dir, HEALTH_PORT=port), log_path=tmp_path / "w.log")
    try:
        wait_until(lambda: get(port, "/readyz")[0] == 200, what="ready")
        private_pg.stop()
        status, body = get(port, "/readyz")
        assert status == 503 and "database unreachable" in json.loads(body)["database"]
        assert get(port, "/healthz")[0] == 200, "a database outage is not a reason to restart the worker"
        private_pg.start()
        wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30, what="ready again")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_readyz_answers_at_once_when_storage_is_down(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    server = StorageServer("service-key").start()
    port = free_port()
    worker = start_worker(worker_env(db_url, data_dir, HEALTH_PORT=port, SUPABASE_URL=server.url,
                                     SUPABASE_SERVICE_ROLE_KEY="service-key"), log_path=tmp_path / "w.log")
    try:
        wait_until(lambda: get(port, "/readyz")[0] == 200, what="ready")
        server.faults.fail_statuses = [503] * 100  # Storage degraded: every request answered 503
        # One request, no retries: a probe that retried with backoff would outlast get()'s 10 s.
        status, body = get(port, "/readyz")
        assert status == 503, (status, body)
        assert "object info" in json.loads(body)["storage"]
        assert get(port, "/healthz")[0] == 200, "a Storage outage is not a reason to restart the worker"
        server.faults.fail_statuses = []
        wait_until(lambda: get(port, "/readyz")[0] == 200, what="ready again")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        server.close()
    assert "storage_retry" not in (tmp_path / "w.log").read_text()


def test_doctor_passes_on_a_good_setup(db_url: str, data_dir: Path) -> None:
    proc = run_cli(["doctor"], worker_env(db_url, data_dir), check=False)
    assert "[ok  ] ffmpeg" in proc.stdout and "[ok  ] migrations: current" in proc.stdout
    assert "hwaccel: FFMPEG_HWACCEL=auto: jobs use cpu" in proc.stdout  # no GPU on this machine
    assert proc.returncode == 0, proc.stdout


def test_doctor_fails_readably_without_ffmpeg_or_migrations(empty_db: str, data_dir: Path) -> None:
    proc = run_cli(["doctor"], worker_env(empty_db, data_dir, FFMPEG_PATH="/nonexistent/ffmpeg"), check=False)
    assert proc.returncode == 1
    assert "[FAIL] ffmpeg: cannot run /nonexistent/ffmpeg" in proc.stdout
    assert "fix: install ffmpeg" in proc.stdout
    assert "[FAIL] migrations: the database is not migrated" in proc.stdout
    assert "fix: python worker.py migrate" in proc.stdout


def test_enqueue_wait_shows_progress_and_outputs(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    env = worker_env(db_url, data_dir)
    worker = start_worker(env)
    try:
        proc = run_cli(["enqueue", "video.process", "--input", str(sample_clip), "--wait"], env)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert "100.0% completed" in proc.stderr
    lines = proc.stdout.splitlines()
    job_id = lines[0].strip()
    assert any(f"media-outputs/anonymous/{job_id}/video.mp4" in line for line in lines)
    assert any(line.strip().startswith("file://") for line in lines)


def test_a_refused_enqueue_leaves_no_uploaded_file_behind(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    proc = run_cli(["enqueue", "video.process", "--input", str(sample_clip), "--priority", "500"],
                   worker_env(db_url, data_dir), check=False)
    assert proc.returncode != 0
    assert "the database refused the job" in proc.stderr and "priority 500 is outside -100..100" in proc.stderr
    uploads = data_dir / "storage" / "media-uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]


def test_delete_input_on_success_only_on_success(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    uploads = data_dir / "storage" / "media-uploads" / "anonymous"
    put_local_object(data_dir, "media-uploads", "anonymous/ok/clip.mp4", sample_clip)
    put_local_object(data_dir, "media-uploads", "anonymous/bad/clip.mp4", b"not a video at all" * 10)
    good = insert_job(db_url, "video.process", {"input": {"path": "anonymous/ok/clip.mp4"},
                                                "delete_input_on_success": True})
    bad = insert_job(db_url, "video.process", {"input": {"path": "anonymous/bad/clip.mp4"},
                                               "delete_input_on_success": True})
    run_cli(["run", "--until-idle"], worker_env(db_url, data_dir))
    assert job_row(db_url, good)["status"] == "completed"
    assert job_row(db_url, bad)["status"] == "failed"
    assert not (uploads / "ok" / "clip.mp4").exists()
    assert (uploads / "bad" / "clip.mp4").exists()


def test_webhook_is_signed_retried_and_recorded(db_url: str, data_dir: Path, tmp_path: Path,
                                                receiver: Receiver) -> None:
    receiver.statuses = [500, 200]
    env = worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers",
                     WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET)
    job_id = insert_job(db_url, "test.slow", {"seconds": 0.3})
    worker = start_worker(env, log_path=tmp_path / "w.log")
    try:
        wait_for_status(db_url, job_id, {"completed"})
        wait_until(lambda: job_row(db_url, job_id)["webhook_sent_at"] is not None, what="webhook recorded")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert all(spec_verify(SECRET, r.headers, r.body) for r in receiver.requests)
    event = json.loads(second.body)
    assert event["type"] == "media_job.completed" and event["data"]["id"] == job_id


def test_a_dead_webhook_receiver_never_changes_the_job(db_url: str, data_dir: Path) -> None:
    env = worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers",
                     WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/gone", WEBHOOK_SECRET=SECRET)
    job_id = insert_job(db_url, "test.slow", {"seconds": 0.3})
    run_cli(["run", "--until-idle"], env, timeout=120)
    row = job_row(db_url, job_id)
    assert row["status"] == "completed"
    assert row["webhook_sent_at"] is None  # left for a later sweep to deliver
