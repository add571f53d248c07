"""A job may not reach another user's upload through `..` in its input path, on the Supabase backend.

The worker reads Storage with the service key, which passes every storage policy. The HTTP client
normalises the URL path, so `A/../B/private.mp4` is sent as `B/private.mp4`: only the worker's
own check stands between user A's job and user B's file (a confused deputy).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.storage_server import StorageServer
from tests.support.workers import insert_job, job_row, run_cli, worker_env

pytestmark = pytest.mark.slow
KEY = "service-key"
A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")
PRIVATE = f"{B}/private.mp4"


@pytest.fixture
def server(sample_clip: Path) -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-uploads")
    srv.add_bucket("media-outputs", 2 * 1024**3, ["application/json"])
    srv.put_object("media-uploads", PRIVATE, sample_clip)
    yield srv
    srv.close()


@pytest.mark.parametrize("path", [f"{A}/../{PRIVATE}", f"{A}/x/../../{PRIVATE}"])
def test_a_dot_dot_path_into_another_users_folder_fails_the_job_and_is_never_fetched(
        db_url: str, data_dir: Path, server: StorageServer, path: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, 'a@example.com'), (%s, 'b@example.com')", (A, B))
    # Inserted as the database owner, as the service role or a backend would: the insert trigger
    # checks input paths only for the anon and authenticated roles (test_rls.py), so this row gets
    # in, and the worker's own check is what must refuse it.
    job_id = insert_job(db_url, "media.probe", {"input": {"bucket": "media-uploads", "path": path}}, user_id=str(A))
    run_cli(["run", "--until-idle"], worker_env(db_url, data_dir, SUPABASE_URL=server.url,
                                                SUPABASE_SERVICE_ROLE_KEY=KEY))
    fetched = [entry for entry in server.log if "private.mp4" in entry[1]]
    assert fetched == [], f"the worker asked Storage for B's file: {fetched}"
    row = job_row(db_url, job_id)
    assert row["status"] == "failed" and row["attempts"] == 1, row
    assert row["error"] == (f"payload.input.path {path!r} is outside the job owner's folder {A}/: "
                            f"upload the file under {A}/ and submit the job again")
