"""Row-level security as a web app meets it: users A and B through PostgREST's roles.

Each `acting_as` block is one API request the way PostgREST runs it: a transaction
with `set local role` and the caller's JWT claims in request.jwt.claims.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from worker.cli_jobs import CONTENT_TYPES
from worker.db import queries, queries_operations

A = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
B = uuid.UUID("b0000000-0000-4000-8000-00000000000b")
TWO_GIB = 2147483648

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture
def api(db: Conn) -> Conn:
    """The test database with users A and B signed up."""
    db.execute("insert into auth.users (id, email) values (%s, 'a@example.com'), (%s, 'b@example.com')", (A, B))
    return db


@contextmanager
def acting_as(conn: Conn, role: str, user: uuid.UUID | None = None) -> Iterator[Conn]:
    """One PostgREST request as `role` (with `user` as the JWT subject); commits unless it raises."""
    claims = {"role": role, **({"sub": str(user)} if user else {})}
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


def upload_path(user: uuid.UUID, name: str = "clip.mp4") -> dict[str, Any]:
    return {"input": {"bucket": "media-uploads", "path": f"{user}/{name}"}}


def insert_as_user(conn: Conn, user: uuid.UUID, payload: dict[str, Any] | None = None, **columns: Any) -> dict[str, Any]:
    cols = {"type": "video.process", "payload": Jsonb(payload or upload_path(user)), **columns}
    statement = sql.SQL("insert into public.media_jobs ({}) values ({}) returning *").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(sql.Placeholder() * len(cols)))
    with acting_as(conn, "authenticated", user):
        row = conn.execute(statement, list(cols.values())).fetchone()
    assert row is not None
    return row


def insert_as_worker(conn: Conn, user: uuid.UUID, status: str = "pending") -> uuid.UUID:
    """A job inserted (and moved to `status`) by the database owner, as the worker would."""
    row = conn.execute("insert into public.media_jobs (user_id, type, payload, status) values (%s, 'video.process', %s, %s)"
                       " returning id", (user, Jsonb(upload_path(user)), status)).fetchone()
    assert row is not None
    job_id: uuid.UUID = row["id"]
    return job_id


def job(conn: Conn, job_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute("select * from public.media_jobs where id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def cancel(conn: Conn, role: str, user: uuid.UUID | None, job_id: uuid.UUID) -> str:
    with acting_as(conn, role, user):
        row = conn.execute("select public.cancel_media_job(%s) as status", (job_id,)).fetchone()
    assert row is not None
    status: str = row["status"]
    return status


# --- media_jobs: insert -------------------------------------------------------------------

def test_user_inserts_a_pending_job_owned_by_themself(api: Conn) -> None:
    implicit = insert_as_user(api, A)  # user_id defaults to auth.uid()
    explicit = insert_as_user(api, A, user_id=A, priority=10, dedupe_key="a-1")
    for row in (implicit, explicit):
        assert row["user_id"] == A and row["status"] == "pending" and row["attempts"] == 0
        assert row["result"] is None and row["locked_by"] is None
    assert explicit["priority"] == 10


def test_user_cannot_insert_a_job_for_another_user(api: Conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        insert_as_user(api, A, payload=upload_path(A), user_id=B)
    assert api.execute("select count(*) as n from public.media_jobs").fetchone() == {"n": 0}


@pytest.mark.parametrize("column, value", [
    ("status", "completed"), ("result", Jsonb({"outputs": []})), ("attempts", 5), ("max_attempts", 10),
    ("error", "x"), ("locked_by", "me"), ("run_at", "2020-01-01T00:00:00Z"), ("cancel_requested_at", None),
])
def test_user_cannot_set_worker_columns(api: Conn, column: str, value: Any) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        insert_as_user(api, A, **{column: value})


@pytest.mark.parametrize("path", [f"{B}/clip.mp4", "clip.mp4", f"{A}/../{B}/clip.mp4", "anonymous/clip.mp4", ""])
def test_user_input_path_must_be_in_their_own_folder(api: Conn, path: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="outside your folder") as raised:
        insert_as_user(api, A, payload={"input": {"bucket": "media-uploads", "path": path}})
    assert raised.value.diag.message_hint and "your own folder" in raised.value.diag.message_hint


def test_user_input_must_be_in_media_uploads(api: Conn) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="payload.input.bucket 'staff-only' is not allowed"):
        insert_as_user(api, A, payload={"input": {"bucket": "staff-only", "path": f"{A}/clip.mp4"}})


def test_user_input_path_must_be_a_string(api: Conn) -> None:
    with pytest.raises(errors.CheckViolation, match="payload.input.path must be a string"):
        insert_as_user(api, A, payload={"input": {"bucket": "media-uploads"}})


@pytest.mark.parametrize("column, value, message", [
    ("type", "Video.Process", "not a job type"),
    ("type", "video", "not a job type"),
    ("type", "video.process; drop table x", "not a job type"),
    ("payload", Jsonb([1, 2]), "must be a JSON object, not array"),
    ("payload", Jsonb({"pad": "x" * 70_000}), "at most 65536"),
    ("priority", 101, "outside -100..100"),
    ("priority", -101, "outside -100..100"),
    ("max_attempts", 0, "outside 1..10"),
    ("max_attempts", 11, "outside 1..10"),
])
def test_insert_is_validated_for_everyone(api: Conn, column: str, value: Any, message: str) -> None:
    row: dict[str, Any] = {"type": "video.process", "payload": Jsonb({}), "priority": 0, "max_attempts": 3}
    row[column] = value
    with pytest.raises(errors.CheckViolation, match=re.escape(message)) as raised:
        api.execute("insert into public.media_jobs (type, payload, priority, max_attempts) "
                    "values (%(type)s, %(payload)s, %(priority)s, %(max_attempts)s)", row)
    assert raised.value.diag.message_hint


def test_validation_accepts_the_edges(api: Conn) -> None:
    api.execute("insert into public.media_jobs (type, payload, priority, max_attempts) values "
                "('media.probe', '{}', -100, 1), ('video.hls_v2.ladder', %s, 100, 10)",
                (Jsonb({"pad": "x" * 60_000}),))
    assert api.execute("select count(*) as n from public.media_jobs").fetchone() == {"n": 2}


# --- media_jobs: read, update, delete ----------------------------------------------------

def test_user_sees_only_their_own_jobs(api: Conn) -> None:
    mine = insert_as_worker(api, A)
    theirs = insert_as_worker(api, B)
    with acting_as(api, "authenticated", A):
        seen = [r["id"] for r in api.execute("select id from public.media_jobs")]
        by_id = api.execute("select id from public.media_jobs where id = %s", (theirs,)).fetchall()
    assert seen == [mine] and by_id == []


@pytest.mark.parametrize("statement", [
    "update public.media_jobs set status = 'completed' where id = %(id)s",
    "update public.media_jobs set cancel_requested_at = now() where id = %(id)s",
    "update public.media_jobs set priority = 100 where id = %(id)s",
    "delete from public.media_jobs where id = %(id)s",
])
def test_user_cannot_update_or_delete_even_their_own_job(api: Conn, statement: str) -> None:
    mine = insert_as_worker(api, A)
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), acting_as(api, "authenticated", A):
        api.execute(statement, {"id": mine})
    assert job(api, mine)["status"] == "pending"


def test_anon_can_do_nothing(api: Conn) -> None:
    existing = insert_as_worker(api, A)
    attempts = [
        ("select * from public.media_jobs", {}),
        ("insert into public.media_jobs (type, payload) values ('video.process', '{}')", {}),
        ("delete from public.media_jobs", {}),
        ("select public.cancel_media_job(%(id)s)", {"id": existing}),
        ("select public.media_jobs_housekeeping()", {}),
    ]
    for statement, params in attempts:
        with pytest.raises(errors.InsufficientPrivilege), acting_as(api, "anon"):
            api.execute(statement, params)
    with acting_as(api, "anon"):
        assert api.execute("select count(*) as n from storage.objects").fetchone() == {"n": 0}
    assert job(api, existing)["status"] == "pending"


# --- cancel_media_job ---------------------------------------------------------------------

def test_owner_cancels_a_pending_job_at_once(api: Conn) -> None:
    mine = insert_as_user(api, A)["id"]
    assert cancel(api, "authenticated", A, mine) == "cancelled"
    row = job(api, mine)
    assert row["status"] == "cancelled" and row["completed_at"] is not None and row["cancel_requested_at"] is not None


def test_owner_cancel_of_a_running_job_asks_the_worker(api: Conn, db_url: str) -> None:
    from worker.db import JobStore

    mine = insert_as_user(api, A)["id"]
    store = JobStore(db_url, "test:w", 30)
    try:
        claimed = store.claim_next_job()
        assert claimed is not None and claimed.id == mine
        assert cancel(api, "authenticated", A, mine) == "processing"
        row = job(api, mine)
        assert row["status"] == "processing" and row["cancel_requested_at"] is not None
        assert store.renew_lease(mine, 50, "processing") == row["cancel_requested_at"]
    finally:
        store.close()


@pytest.mark.parametrize("give_back", ["retry", "release"])
def test_a_requested_cancel_wins_when_the_worker_gives_the_job_back(api: Conn, db_url: str, give_back: str) -> None:
    from worker.db import JobStore

    mine = insert_as_user(api, A)["id"]
    store = JobStore(db_url, "test:w", 30)
    try:
        assert store.claim_next_job() is not None
        assert cancel(api, "authenticated", A, mine) == "processing"
        if give_back == "retry":
            assert store.retry_or_fail_job(mine, "network down", 0) == "cancelled"
        else:
            store.release_job(mine)
        assert store.claim_next_job() is None
    finally:
        store.close()
    row = job(api, mine)
    assert row["status"] == "cancelled" and row["completed_at"] is not None and row["locked_by"] is None


def test_cancelling_a_finished_job_changes_nothing(api: Conn) -> None:
    for status in ("completed", "failed", "cancelled"):
        done = insert_as_worker(api, A, status=status)
        before = job(api, done)
        assert cancel(api, "authenticated", A, done) == status
        assert job(api, done) == before


def test_user_cannot_cancel_another_users_job(api: Conn) -> None:
    theirs = insert_as_worker(api, B)
    missing = uuid.uuid4()
    for job_id in (theirs, missing):
        with pytest.raises(errors.NoDataFound, match="no media job") as raised:
            cancel(api, "authenticated", A, job_id)
        assert str(job_id) in str(raised.value)  # the same answer for both: nothing leaks
    assert job(api, theirs)["status"] == "pending"


def test_service_role_and_a_direct_session_cancel_any_job(api: Conn) -> None:
    first, second = insert_as_worker(api, A), insert_as_worker(api, B)
    assert cancel(api, "service_role", None, first) == "cancelled"
    row = api.execute("select public.cancel_media_job(%s) as status", (second,)).fetchone()
    assert row == {"status": "cancelled"}


def test_a_session_without_a_jwt_or_table_rights_cannot_cancel(api: Conn) -> None:
    theirs = insert_as_worker(api, B)
    with pytest.raises(errors.NoDataFound), api.transaction():
        # a login that may not update the table, with no claims: never treated as the operator
        api.execute("set local session authorization authenticated")
        api.execute("select public.cancel_media_job(%s)", (theirs,))
    assert job(api, theirs)["status"] == "pending"


def test_cancel_is_security_definer_with_an_empty_search_path(api: Conn) -> None:
    row = api.execute("select prosecdef, proconfig from pg_proc where oid = 'public.cancel_media_job(uuid)'::regprocedure"
                      ).fetchone()
    assert row == {"prosecdef": True, "proconfig": ['search_path=""']}


# --- storage.objects ------------------------------------------------------------------------

def put_object(conn: Conn, bucket: str, name: str) -> None:
    conn.execute("insert into storage.objects (bucket_id, name) values (%s, %s)", (bucket, name))


def test_user_reads_and_writes_only_their_upload_folder(api: Conn) -> None:
    put_object(api, "media-uploads", f"{B}/theirs.mp4")
    with acting_as(api, "authenticated", A):
        put_object(api, "media-uploads", f"{A}/mine.mp4")
        api.execute("update storage.objects set metadata = '{}' where name = %s", (f"{A}/mine.mp4",))
        visible = [r["name"] for r in api.execute("select name from storage.objects")]
        touched = api.execute("update storage.objects set metadata = '{}' where name = %s", (f"{B}/theirs.mp4",)).rowcount
        deleted = api.execute("delete from storage.objects where name = %s", (f"{B}/theirs.mp4",)).rowcount
    assert visible == [f"{A}/mine.mp4"] and touched == 0 and deleted == 0
    for name in (f"{B}/planted.mp4", "loose.mp4"):
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), acting_as(api, "authenticated", A):
            put_object(api, "media-uploads", name)
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), acting_as(api, "authenticated", A):
        api.execute("update storage.objects set name = %s where name = %s", (f"{B}/moved.mp4", f"{A}/mine.mp4"))
    with acting_as(api, "authenticated", A):
        assert api.execute("delete from storage.objects where name = %s", (f"{A}/mine.mp4",)).rowcount == 1


def test_user_only_reads_their_outputs_and_never_writes_them(api: Conn) -> None:
    put_object(api, "media-outputs", f"{A}/job/video.mp4")
    put_object(api, "media-outputs", f"{B}/job/video.mp4")
    with acting_as(api, "authenticated", A):
        visible = [r["name"] for r in api.execute("select name from storage.objects")]
        touched = api.execute("update storage.objects set metadata = '{}' where bucket_id = 'media-outputs'").rowcount
        deleted = api.execute("delete from storage.objects where bucket_id = 'media-outputs'").rowcount
    assert visible == [f"{A}/job/video.mp4"] and touched == 0 and deleted == 0
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), acting_as(api, "authenticated", A):
        put_object(api, "media-outputs", f"{A}/job/forged.mp4")


def test_buckets_are_private_with_the_2_gib_limit_and_mime_lists(api: Conn) -> None:
    rows = {r["id"]: r for r in api.execute("select * from storage.buckets where id like 'media-%'")}
    assert set(rows) == {"media-uploads", "media-outputs"}
    for row in rows.values():
        assert row["public"] is False and row["file_size_limit"] == TWO_GIB
    uploads, outputs = set(rows["media-uploads"]["allowed_mime_types"]), set(rows["media-outputs"]["allowed_mime_types"])
    assert set(CONTENT_TYPES.values()) <= uploads, "`worker.py enqueue` would be refused"
    assert {"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo", "video/mp2t",
            "video/3gpp", "audio/mpeg", "audio/mp4", "audio/wav", "audio/x-wav", "audio/flac", "audio/ogg",
            "audio/aac", "audio/webm"} <= uploads
    assert outputs == {"video/mp4", "image/jpeg", "image/webp", "audio/mp4", "audio/mpeg", "audio/wav", "audio/flac",
                       "application/vnd.apple.mpegurl", "application/x-mpegurl", "video/mp2t", "text/vtt",
                       "application/json"}
    with acting_as(api, "authenticated", A):
        assert api.execute("select count(*) as n from storage.buckets").fetchone() == {"n": 0}
        assert api.execute("update storage.buckets set public = true where id = 'media-outputs'").rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), acting_as(api, "authenticated", A):
        api.execute("insert into storage.buckets (id, name, public) values ('mine', 'mine', true)")


# --- the worker's side --------------------------------------------------------------------

SAMPLE_PARAMS: dict[str, Any] = {
    "worker_id": "test:w", "holder": "test:w/0", "lease_seconds": 30, "types": ["video.process"], "progress": 0.0,
    "stage": "test",
    "job_id": uuid.uuid4(), "result": Jsonb({"outputs": []}), "error": "test", "delay_seconds": 0,
    "user_id": A, "type": "video.process", "payload": Jsonb({}), "priority": 0, "max_attempts": 3,
    "done": Jsonb([{"id": str(uuid.uuid4()), "slot": "test:w/0", "result": {}}]),
    "claimers": Jsonb(["test:w/0", "test:w/1"]),
    "slots": ["test:w/0"], "keep": [uuid.uuid4()],
    "id": "test:w", "host": "test", "pid": 1, "started_at": datetime.now(UTC), "concurrency": 1, "job_types": [],
    "state": "running", "workers": ["test:w"], "seen_seconds": 30, "stale_seconds": 300,
}


def worker_statements() -> dict[str, str]:
    return {name: value for module in (queries, queries_operations) for name, value in vars(module).items()
            if name.isupper() and not name.startswith("_") and isinstance(value, str)
            and value.lstrip().split(None, 1)[0].lower() in {"select", "insert", "update", "delete", "with"}}


@pytest.mark.parametrize("role", [None, "service_role"])
def test_every_worker_statement_runs_against_the_schema(api: Conn, role: str | None) -> None:
    statements = worker_statements()
    assert {"CLAIM_JOB", "COMPLETE_AND_CLAIM", "RELEASE_UNKNOWN_CLAIMS", "RENEW_LEASE", "FAIL_JOB",
            "INSERT_JOB", "BUCKET_RULES", "SAVE_UPLOAD"} <= set(statements)
    for name, statement in statements.items():
        params = {p: SAMPLE_PARAMS.get(p) for p in re.findall(r"%\((\w+)\)s", statement)}
        with api.transaction(force_rollback=True):
            if role:
                api.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                api.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"role": role}),))
            try:
                api.execute(statement, params)
            except psycopg.errors.NoDataFound:
                assert name == "REQUEST_CANCEL"  # cancel_media_job's answer for an unknown id
            except psycopg.Error as exc:
                pytest.fail(f"queries.{name} fails against the migrated schema as {role or 'owner'}: {exc}")


def test_media_jobs_is_streamed_by_realtime(api: Conn) -> None:
    rows = api.execute("select tablename from pg_publication_tables where pubname = 'supabase_realtime'").fetchall()
    assert {"tablename": "media_jobs"} in rows
