"""Migrations from scratch, twice, and the compatibility schema for plain Postgres."""

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
create schema auth;
create table auth.users (id uuid primary key);
create function auth.uid() returns uuid language sql stable as 'select null::uuid';
create function auth.role() returns text language sql stable as 'select null::text';
create schema storage;
create table storage.buckets (id text primary key, name text not null, public boolean default false,
  file_size_limit bigint, allowed_mime_types text[], created_at timestamptz, updated_at timestamptz,
  owner uuid);
create table storage.objects (id uuid primary key default gen_random_uuid(), bucket_id text, name text,
  owner uuid, metadata jsonb);
create function storage.foldername(name text) returns text[] language sql immutable
  as $$ select (string_to_array(name, '/'))[1:array_length(string_to_array(name, '/'), 1) - 1] $$;
"""


def test_compat_schema_is_not_installed_over_an_existing_auth_schema(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(SUPABASE_LIKE_SCHEMA)
    apply_migrations(empty_db)
    with psycopg.connect(empty_db) as conn:
        # the compat schema defines storage.filename(); a Supabase database is left as it is
        assert conn.execute("select to_regprocedure('storage.filename(text)')").fetchone() == (None,)
        assert conn.execute("select to_regclass('public.media_jobs') is not null").fetchone() == (True,)
