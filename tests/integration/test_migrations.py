"""Migrations from scratch, twice, and the compatibility schema for plain Postgres."""

import uuid

import psycopg
import pytest

from worker.db import apply_migrations, check_migrations_current
from worker.db.migrations import available_migrations
from worker.errors import MigrationsNotCurrent


def test_apply_from_scratch_then_again_is_a_no_op(empty_db: str) -> None:
    with pytest.raises(MigrationsNotCurrent, match="python worker.py migrate"):
        check_migrations_current(empty_db)
    first = apply_migrations(empty_db)
    assert first == [f"{m.version}_{m.name}" for m in available_migrations()]
    assert apply_migrations(empty_db) == []
    check_migrations_current(empty_db)
    with psycopg.connect(empty_db) as conn:
        versions = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
    assert sorted(versions) == [m.version for m in available_migrations()]


def test_migration_files_are_named_for_the_supabase_cli() -> None:
    for migration in available_migrations():
        assert len(migration.version) == 14 and migration.version.isdigit()


def test_compat_schema_provides_supabase_objects(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        roles = {r[0] for r in conn.execute(
            "select rolname from pg_roles where rolname in ('anon','authenticated','service_role')")}
        assert roles == {"anon", "authenticated", "service_role"}
        assert conn.execute("select to_regclass('auth.users') is not null").fetchone() == (True,)
        assert conn.execute("select to_regclass('storage.buckets') is not null").fetchone() == (True,)
        assert conn.execute("select storage.foldername('u1/job/x.mp4')").fetchone() == (["u1", "job"],)
        assert conn.execute("select count(*) from pg_publication where pubname='supabase_realtime'").fetchone() == (1,)
        with conn.transaction():
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         ('{"sub":"2f1f0b0e-58a4-4c40-a8a8-6c3b5fbe9a11","role":"authenticated"}',))
            assert str(conn.execute("select auth.uid()").fetchone()[0]) == "2f1f0b0e-58a4-4c40-a8a8-6c3b5fbe9a11"


SUPABASE_LIKE_SCHEMA = """
do $$ begin
  create role anon nologin noinherit;
exception when duplicate_object then null; end $$;
do $$ begin
  create role authenticated nologin noinherit;
exception when duplicate_object then null; end $$;
do $$ begin
  create role service_role nologin noinherit bypassrls;
exception when duplicate_object then null; end $$;
create schema auth;
create table auth.users (id uuid primary key);
create function auth.uid() returns uuid language sql stable
  as $$ select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid $$;
create function auth.role() returns text language sql stable
  as $$ select nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role' $$;
create schema storage;
create table storage.buckets (id text primary key, name text not null, public boolean default false,
  file_size_limit bigint, allowed_mime_types text[], created_at timestamptz, updated_at timestamptz,
  owner uuid);
create table storage.objects (id uuid primary key default gen_random_uuid(), bucket_id text, name text,
  owner uuid, metadata jsonb);
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
create function storage.foldername(name text) returns text[] language sql immutable
  as $$ select (string_to_array(name, '/'))[1:array_length(string_to_array(name, '/'), 1) - 1] $$;
grant usage on schema public, auth, storage to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
"""

REALTIME_PUBLICATIONS = {
    "absent": "",
    "empty": "create publication supabase_realtime;",
    "for all tables": "create publication supabase_realtime for all tables;",
}


@pytest.mark.parametrize("publication", REALTIME_PUBLICATIONS)
def test_compat_schema_is_not_installed_over_an_existing_auth_schema(empty_db: str, publication: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(SUPABASE_LIKE_SCHEMA + REALTIME_PUBLICATIONS[publication])
    apply_migrations(empty_db)
    with psycopg.connect(empty_db) as conn:
        # the compat schema defines storage.filename(); a Supabase database is left as it is
        assert conn.execute("select to_regprocedure('storage.filename(text)')").fetchone() == (None,)
        assert conn.execute("select to_regclass('public.media_jobs') is not null").fetchone() == (True,)
        streamed = conn.execute("select count(*) from pg_publication_tables where tablename = 'media_jobs'").fetchone()
    assert streamed == ((0,) if publication == "absent" else (1,))


def test_every_migration_applies_twice(db_url: str) -> None:
    """As `psql -f` run again would: each file, once more, on the migrated database."""
    catalog = """select (select count(*) from pg_policies where tablename in ('media_jobs', 'objects')),
                        (select count(*) from pg_trigger where tgrelid = 'public.media_jobs'::regclass),
                        (select count(*) from pg_publication_tables where tablename = 'media_jobs'),
                        (select count(*) from storage.buckets)"""
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute(catalog).fetchone()
        for migration in available_migrations():
            with conn.transaction():
                conn.execute(migration.sql)
        assert conn.execute(catalog).fetchone() == before
    check_migrations_current(db_url)


@pytest.mark.parametrize("made_by", ["this version", "a version before the mark"])
def test_migrate_refreshes_the_compat_schema_it_installed(empty_db: str, made_by: str) -> None:
    apply_migrations(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        if made_by != "this version":
            conn.execute("comment on schema auth is null")
        # an embedded database made by an older version lacks what the compat schema gained since
        conn.execute("drop function storage.filename(text)")
    assert apply_migrations(empty_db) == []
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select storage.filename('a/b/c.mp4')").fetchone() == ("c.mp4",)


def test_migrate_by_a_role_that_does_not_own_the_compat_schema_changes_nothing(empty_db: str) -> None:
    apply_migrations(empty_db)
    role = f"mw_migrator_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(empty_db, autocommit=True) as conn:
        database = conn.info.dbname
        conn.execute(f"create role {role} login")
        conn.execute(f"grant create on database {database} to {role}")
        conn.execute(f"grant usage, create on schema supabase_migrations to {role}")
        conn.execute(f"grant select on supabase_migrations.schema_migrations to {role}")
    try:
        assert apply_migrations(libpq_url_as(empty_db, role)) == []
        check_migrations_current(libpq_url_as(empty_db, role))
    finally:
        with psycopg.connect(empty_db, autocommit=True) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")


def libpq_url_as(url: str, user: str) -> str:
    """`url` with another user name (trust authentication, as on the test servers)."""
    with psycopg.connect(url) as conn:
        host, port, dbname = conn.info.host, conn.info.port, conn.info.dbname
    return psycopg.conninfo.make_conninfo(host=host, port=port, dbname=dbname, user=user)


# pg_cron's own schema cannot be created without preloading the library, so this
# stands in for its one entry point: cron.schedule(name, schedule, command).
PG_CRON_STAND_IN = """
create schema cron;
create table cron.job (jobid bigserial, jobname text unique, schedule text, command text);
create function cron.schedule(job_name text, schedule text, command text) returns bigint language sql as $$
  insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
  on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command
  returning jobid $$;
"""


def test_housekeeping_is_scheduled_when_pg_cron_is_there(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(PG_CRON_STAND_IN)
    apply_migrations(empty_db)
    with psycopg.connect(empty_db) as conn:
        jobs = conn.execute("select jobname, command from cron.job").fetchall()
    assert jobs == [("media-jobs-housekeeping", "select public.media_jobs_housekeeping()")]


def test_housekeeping_deletes_old_finished_jobs_only(db_url: str) -> None:
    ages = [("completed", 31, False), ("completed", 29, True), ("cancelled", 31, False), ("failed", 31, True),
            ("failed", 91, False), ("pending", None, True), ("processing", None, True)]
    with psycopg.connect(db_url, autocommit=True) as conn:
        for status, days, _ in ages:
            conn.execute("insert into public.media_jobs (type, status, completed_at) values "
                         "('video.process', %s, now() - make_interval(days => %s))", (status, days))
        assert conn.execute("select public.media_jobs_housekeeping()").fetchone() == (3,)
        kept = sorted(conn.execute("select status::text, extract(day from now() - completed_at)::int "
                                   "from public.media_jobs").fetchall(), key=str)
    assert kept == sorted([(s, d) for s, d, keep in ages if keep], key=str)
