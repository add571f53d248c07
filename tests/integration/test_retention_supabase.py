"""Storage retention through the Storage API (issue 20): candidates read from storage.objects, deletes sent
to the local Storage test server, which (as the real one) removes the rows of what it deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.storage_server import StorageServer
from tests.support.workers import insert_job, run_cli, worker_env

pytestmark = pytest.mark.slow
KEY = "service-key"
HOUR = 3600.0
UPLOADS, OUTPUTS = "media-uploads", "media-outputs"


@pytest.fixture
def server(db_url: str) -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket(UPLOADS)
    srv.add_bucket(OUTPUTS)

    def forget_rows(bucket: str, names: list[str]) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from storage.objects where bucket_id = %s and name = any(%s)", (bucket, names))

    srv.on_delete = forget_rows
    yield srv
    srv.close()


def put(server: StorageServer, db_url: str, bucket: str, name: str, age_seconds: float, size: int = 1000) -> None:
    """An object on the server, with the storage.objects row Supabase Storage keeps for it."""
    server.put_object(bucket, name, b"x" * size)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into storage.objects (bucket_id, name, metadata, created_at) "
                     "values (%s, %s, jsonb_build_object('size', %s::bigint), now() - make_interval(secs => %s))",
                     (bucket, name, size, age_seconds))


def stored(db_url: str, bucket: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("select name from storage.objects where bucket_id = %s order by name",
                                           (bucket,))]


def job_ids(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        return {str(r[0]) for r in conn.execute("select id from public.media_jobs")}


def env(db_url: str, data_dir: Path, server: StorageServer, **overrides: object) -> dict[str, str]:
    return worker_env(db_url, data_dir, SUPABASE_URL=server.url, SUPABASE_SERVICE_ROLE_KEY=KEY,
                      UPLOAD_MAX_RETRIES=0, **overrides)


def expired_job(db_url: str) -> str:
    ended = datetime.now(UTC) - timedelta(days=40)
    return insert_job(db_url, "video.process", {"input": {"path": "anonymous/x/in.mp4"}}, status="completed",
                      completed_at=ended)


def test_old_uploads_are_deleted_through_the_storage_api(db_url: str, data_dir: Path, server: StorageServer) -> None:
    put(server, db_url, UPLOADS, "anonymous/a/old.mp4", 2 * HOUR)
    put(server, db_url, UPLOADS, "anonymous/b/old-pending.mp4", 2 * HOUR)
    put(server, db_url, UPLOADS, "anonymous/c/fresh.mp4", 60)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into storage.buckets (id, name) values ('other-bucket', 'other-bucket')")
    server.add_bucket("other-bucket")
    put(server, db_url, "other-bucket", "anonymous/d/old.mp4", 2 * HOUR)
    insert_job(db_url, "video.process", {"input": {"path": "anonymous/b/old-pending.mp4"}})

    run_cli(["cleanup"], env(db_url, data_dir, server, UPLOAD_RETENTION_HOURS=1))

    assert stored(db_url, UPLOADS) == ["anonymous/b/old-pending.mp4", "anonymous/c/fresh.mp4"]
    assert not server.object_file(UPLOADS, "anonymous/a/old.mp4").exists()
    assert stored(db_url, "other-bucket") == ["anonymous/d/old.mp4"]
    assert [entry[1] for entry in server.requests("DELETE")] == [f"/storage/v1/object/{UPLOADS}"]


def test_a_job_inserted_while_the_pass_runs_keeps_its_input(db_url: str, data_dir: Path,
                                                            server: StorageServer) -> None:
    names = [f"anonymous/u/{n:03d}.mp4" for n in range(150)]  # two batches of the pass
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into storage.objects (bucket_id, name, metadata, created_at) "
                     "select %s, n, '{\"size\": 10}', now() - interval '2 hours' from unnest(%s::text[]) n",
                     (UPLOADS, names))
    forget_rows = server.on_delete
    assert forget_rows is not None

    batches: list[list[str]] = []

    def insert_a_job_after_the_first_batch(bucket: str, deleted: list[str]) -> None:
        forget_rows(bucket, deleted)
        batches.append(deleted)
        if len(batches) == 1:
            insert_job(db_url, "video.process", {"input": {"path": names[-1]}})

    server.on_delete = insert_a_job_after_the_first_batch
    run_cli(["cleanup"], env(db_url, data_dir, server, UPLOAD_RETENTION_HOURS=1))
    assert stored(db_url, UPLOADS) == [names[-1]]
    assert len(batches) == 2 and names[-1] not in batches[1]


def test_outputs_go_before_their_row_and_a_storage_500_keeps_the_row(db_url: str, data_dir: Path,
                                                                      server: StorageServer) -> None:
    jobs = sorted([expired_job(db_url), expired_job(db_url)])  # the pass takes them in id order
    for job in jobs:
        put(server, db_url, OUTPUTS, f"anonymous/{job}/video.mp4", 40 * 86400)
        put(server, db_url, OUTPUTS, f"anonymous/{job}/poster.jpg", 40 * 86400)
    rows_when_deleted: list[set[str]] = []
    forget_rows = server.on_delete
    assert forget_rows is not None

    def note_rows_then_fail_the_next(bucket: str, names: list[str]) -> None:
        rows_when_deleted.append(job_ids(db_url))
        forget_rows(bucket, names)
        server.faults.fail_statuses.append(500)  # the second job's delete request fails

    server.on_delete = note_rows_then_fail_the_next
    first = run_cli(["cleanup"], env(db_url, data_dir, server, OUTPUT_RETENTION_FOLLOWS_JOBS="true"), check=False)

    assert first.returncode == 1 and "kept for the next pass" in first.stderr
    assert rows_when_deleted == [set(jobs)]  # its row was there while its outputs went
    assert job_ids(db_url) == {jobs[1]}
    assert stored(db_url, OUTPUTS) == [f"anonymous/{jobs[1]}/poster.jpg", f"anonymous/{jobs[1]}/video.mp4"]

    server.on_delete = forget_rows
    server.faults.fail_statuses.clear()
    run_cli(["cleanup"], env(db_url, data_dir, server, OUTPUT_RETENTION_FOLLOWS_JOBS="true"))
    assert job_ids(db_url) == set() and stored(db_url, OUTPUTS) == []


def test_dry_run_reads_storage_objects_and_sends_no_delete(db_url: str, data_dir: Path,
                                                          server: StorageServer) -> None:
    job = expired_job(db_url)
    put(server, db_url, OUTPUTS, f"anonymous/{job}/video.mp4", 40 * 86400, size=5000)
    put(server, db_url, UPLOADS, "anonymous/a/old.mp4", 2 * HOUR)
    out = run_cli(["cleanup", "--dry-run"], env(db_url, data_dir, server, UPLOAD_RETENTION_HOURS=1,
                                                OUTPUT_RETENTION_FOLLOWS_JOBS="true")).stdout
    reasons = {line.split()[1]: line.split()[-1] for line in out.splitlines() if line.startswith("media-")}
    assert reasons == {"anonymous/a/old.mp4": "abandoned_upload", f"anonymous/{job}/video.mp4": "expired_job"}
    assert "would delete 1 expired job row(s)" in out
    assert server.requests("DELETE") == [] and job_ids(db_url) == {job}


def test_status_counts_storage_objects(db_url: str, data_dir: Path, server: StorageServer) -> None:
    put(server, db_url, UPLOADS, "anonymous/a/in.mp4", 0, size=3 * 1024 * 1024)
    out = run_cli(["status"], env(db_url, data_dir, server)).stdout
    usage = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip().startswith("media-")}
    assert usage == {UPLOADS: ["1", "objects", "3.0", "MB"], OUTPUTS: ["0", "objects", "0", "B"]}
