"""Real worker processes against the local Storage API server: failures, crashes, resumes."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage_server import StorageServer
from tests.support.media import sha256
from tests.support.workers import (
    insert_job,
    job_row,
    lease_expired,
    run_cli,
    start_worker,
    wait_for_status,
    wait_until,
    worker_env,
)
from utils.supabase.pipeline import PIPELINE_DEPTH

pytestmark = pytest.mark.slow
KEY = "service-key"
MiB = 1024 * 1024
INPUT = {"bucket": "media-uploads", "path": "anonymous/in/clip.mp4"}


@pytest.fixture
def server(sample_clip: Path) -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-uploads")
    srv.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4", "image/jpeg"])
    srv.put_object("media-uploads", INPUT["path"], sample_clip)
    yield srv
    srv.close()


def supabase_env(db_url: str, data_dir: Path, server: StorageServer, **overrides: object) -> dict[str, str]:
    return worker_env(db_url, data_dir, SUPABASE_URL=server.url, SUPABASE_SERVICE_ROLE_KEY=KEY,
                      WORKER_HANDLER_MODULES="tests.blob_handler", **overrides)


def test_a_video_job_completes_through_supabase_storage(db_url: str, data_dir: Path, server: StorageServer) -> None:
    job_id = insert_job(db_url, "video.process", {"input": INPUT})
    run_cli(["run", "--until-idle"], supabase_env(db_url, data_dir, server, OUTPUT_SIGNED_URL_SECONDS=60))
    row = job_row(db_url, job_id)
    assert row["status"] == "completed", row["error"]
    outputs = {o["kind"]: o for o in row["result"]["outputs"]}
    video = outputs["video"]
    stored = server.object_file("media-outputs", video["path"])
    assert video["path"] == f"anonymous/{job_id}/video.mp4"
    assert video["sha256"] == sha256(stored) and video["size"] == stored.stat().st_size
    assert video["signed_url"].startswith(f"{server.url}/storage/v1/object/sign/media-outputs/anonymous/{job_id}/")
    assert server.requests("GET", "/object/authenticated/media-uploads/anonymous/in/clip.mp4")


@pytest.mark.parametrize(("case", "expected"), [
    ("too_large", "raise storage.buckets.file_size_limit"),
    ("wrong_mime", "add it to storage.buckets.allowed_mime_types"),
    ("wrong_key", "check SUPABASE_SERVICE_ROLE_KEY"),
])
def test_refusals_fail_the_job_at_once_with_the_fix_and_send_nothing(
        db_url: str, data_dir: Path, server: StorageServer, case: str, expected: str) -> None:
    overrides = {"SUPABASE_SERVICE_ROLE_KEY": "not-the-key"} if case == "wrong_key" else {}
    if case == "too_large":
        server.add_bucket("media-outputs", 100_000, ["video/mp4"])
    if case == "wrong_mime":
        server.add_bucket("media-outputs", None, ["image/png"])
    job_id = insert_job(db_url, "test.blob", {"input": INPUT, "size_bytes": 200_000})
    run_cli(["run", "--until-idle"], {**supabase_env(db_url, data_dir, server), **overrides})
    row = job_row(db_url, job_id)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert expected in row["error"]
    assert not server.requests("POST", "/upload/resumable") and not server.requests("POST", "/object/media-outputs")
    assert not server.requests("PATCH")


def test_a_worker_killed_mid_upload_is_resumed_from_the_stored_offset(
        db_url: str, data_dir: Path, server: StorageServer, tmp_path: Path) -> None:
    size = 8 * MiB
    upload = {"UPLOAD_CHUNK_SIZE_MB": 1, "UPLOAD_RESUMABLE_THRESHOLD_MB": 0}
    server.faults.patch_delay_seconds = 0.3
    job_id = insert_job(db_url, "test.blob", {"input": INPUT, "size_bytes": size})
    first = start_worker(supabase_env(db_url, data_dir, server, WORKER_LEASE_SECONDS=3, WORKER_HEARTBEAT_SECONDS=0.5,
                                      **upload), log_path=tmp_path / "first.log")
    wait_until(lambda: server.patches >= 3 or first.poll() is not None, timeout=60, what="three chunks sent")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert server.patches >= 3, (tmp_path / "first.log").read_text()
    dead = job_row(db_url, job_id)["locked_by"]
    wait_until(lambda: lease_expired(db_url, job_id), what="the dead worker's lease to expire")
    sent_before = len(server.log)
    server.faults.patch_delay_seconds = 0
    # A long lease for the second worker: late heartbeats on a loaded machine cannot cost it the job.
    second = start_worker(supabase_env(db_url, data_dir, server, WORKER_LEASE_SECONDS=300, **upload),
                          log_path=tmp_path / "second.log")
    try:
        row = wait_for_status(db_url, job_id, {"completed", "failed"}, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert row["status"] == "completed" and row["attempts"] == 2, row["error"]
    assert [e["attempt"] for e in row["errors"]] == [1] and row["errors"][0]["error"].endswith(dead)
    assert len(server.requests("POST", "/upload/resumable")) == 1, "the second worker resumed, not restarted"
    resumed = [entry for entry in server.log[sent_before:] if entry[0] == "HEAD"]
    assert resumed and int(resumed[0][3]) >= 2 * MiB, "continued from the server's offset"
    # Beyond the file, at most a pipeline of chunks the dead worker had on the wire (the server reads and drops
    # them) and one pipeline the second worker sends while the dead connection's PATCHes still hold the lock.
    assert server.bytes_received <= size + 2 * PIPELINE_DEPTH * MiB
    stored = server.object_file("media-outputs", f"anonymous/{job_id}/blob.mp4")
    assert sha256(stored) == row["result"]["outputs"][0]["sha256"]
    with __import__("psycopg").connect(db_url) as conn:
        journal = conn.execute("select sha256, stored_at is not null from public.media_job_uploads").fetchall()
    assert journal == [(row["result"]["outputs"][0]["sha256"], True)], "the finished upload, marked stored"


def test_a_cancel_stops_a_long_upload_between_chunks(
        db_url: str, data_dir: Path, server: StorageServer, tmp_path: Path) -> None:
    env = supabase_env(db_url, data_dir, server, UPLOAD_CHUNK_SIZE_MB=1, UPLOAD_RESUMABLE_THRESHOLD_MB=0)
    server.faults.patch_delay_seconds = 0.3
    job_id = insert_job(db_url, "test.blob", {"input": INPUT, "size_bytes": 20 * MiB})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: server.patches >= 2, timeout=60, what="two chunks sent")
        with __import__("psycopg").connect(db_url, autocommit=True) as conn:
            conn.execute("update public.media_jobs set cancel_requested_at = now() where id = %s", (job_id,))
        row = wait_for_status(db_url, job_id, {"cancelled", "completed", "failed"}, timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert row["status"] == "cancelled", row["error"]
    assert server.patches < 20 and not server.object_file("media-outputs", f"anonymous/{job_id}/blob.mp4").exists()
