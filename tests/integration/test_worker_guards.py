"""The worker's own checks on the database it is given and on the jobs it claims."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.workers import insert_job, job_row, put_local_object, run_cli, worker_env
from worker.db import JobStore
from worker.errors import JobRefused

A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")


@pytest.mark.slow
def test_worker_refuses_an_unmigrated_database(empty_db: str, data_dir: Path) -> None:
    proc = run_cli(["run"], worker_env(empty_db, data_dir), check=False, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "the database is not migrated" in proc.stderr
    assert "python worker.py migrate" in proc.stderr and "supabase db push" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_job_reading_another_users_file_fails_even_when_the_service_role_inserted_it(
        db_url: str, data_dir: Path, sample_clip: Path) -> None:
    path = f"{B}/private.mp4"
    put_local_object(data_dir, "media-uploads", path, sample_clip)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) values (%s), (%s)", (A, B))
        with conn.transaction():
            # the service role bypasses RLS and the insert-time folder check
            conn.execute("set local role service_role")
            conn.execute("select set_config('request.jwt.claims', '{\"role\":\"service_role\"}', true)")
            row = conn.execute("insert into public.media_jobs (user_id, type, payload) values (%s, 'video.process', %s)"
                               " returning id", (A, json.dumps({"input": {"bucket": "media-uploads", "path": path}}))
                               ).fetchone()
    assert row is not None
    run_cli(["run", "--until-idle"], worker_env(db_url, data_dir))
    job = job_row(db_url, str(row[0]))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert f"payload.input.path '{path}' is outside the job owner's folder {A}/" in job["error"]
    outputs = data_dir / "storage" / "media-outputs"
    assert not any(p.is_file() for p in outputs.rglob("*")), "the worker wrote outputs for a refused job"


@pytest.mark.parametrize("kwargs, reason", [
    ({"priority": 500}, "priority 500 is outside -100..100 Use 10 for high"),
    ({"job_type": "Video"}, "not a job type Use a lowercase dotted handler name"),
    ({"dedupe_key": "once"}, "Key (dedupe_key)=(once) already exists"),
])
def test_the_store_reports_a_refused_insert_with_the_reason(db_url: str, kwargs: dict[str, object], reason: str) -> None:
    store = JobStore(db_url, "test:w", 30)
    try:
        store.insert_job("video.process", {}, dedupe_key="once")
        args: dict = {"job_type": "video.process", "payload": {}, **kwargs}
        with pytest.raises(JobRefused, match=re.escape(reason)):
            store.insert_job(**args)
    finally:
        store.close()


def test_job_reading_from_another_bucket_fails(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    put_local_object(data_dir, "media-outputs", "anonymous/x/clip.mp4", sample_clip)
    job_id = insert_job(db_url, "video.process", {"input": {"bucket": "media-outputs", "path": "anonymous/x/clip.mp4"},
                                                  "delete_input_on_success": True})
    run_cli(["run", "--until-idle"], worker_env(db_url, data_dir))
    job = job_row(db_url, job_id)
    assert job["status"] == "failed"
    assert "payload.input.bucket 'media-outputs' is not allowed: inputs must be uploaded to media-uploads" in job["error"]
    assert (data_dir / "storage" / "media-outputs" / "anonymous" / "x" / "clip.mp4").exists()
