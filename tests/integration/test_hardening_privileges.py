"""anon and authenticated hold no table privilege on worker-only tables: RLS does not cover
TRUNCATE or CREATE TRIGGER, so Supabase's default grants must be taken back (issue 14 §6)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors

from tests.integration.test_rls import acting_as

Conn = psycopg.Connection[dict[str, Any]]
API_ROLES = ("anon", "authenticated")
NOT_COVERED_BY_RLS = ("TRUNCATE", "TRIGGER", "REFERENCES")
USER = uuid.UUID("a0000000-0000-4000-8000-00000000000a")


@pytest.fixture
def hostile_trigger(db: Conn) -> str:
    """A trigger function anyone may execute (Supabase's default for public functions)."""
    db.execute("create function public.hostile_trigger() returns trigger language plpgsql "
               "as $$ begin raise exception 'hostile trigger'; end $$")
    db.execute("grant execute on function public.hostile_trigger() to anon, authenticated")
    return "public.hostile_trigger()"


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_hold_no_privilege_on_media_job_uploads(db: Conn, role: str) -> None:
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", *NOT_COVERED_BY_RLS):
        row = db.execute("select has_table_privilege(%s, 'public.media_job_uploads', %s) as held",
                         (role, privilege)).fetchone()
        assert row == {"held": False}, f"{role} holds {privilege}"


@pytest.mark.parametrize("role", API_ROLES)
def test_a_user_can_neither_truncate_nor_hang_a_trigger_on_media_job_uploads(db: Conn, hostile_trigger: str,
                                                                             role: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), acting_as(db, role, USER):
        db.execute("truncate public.media_job_uploads")
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"), acting_as(db, role, USER):
        db.execute(f"create trigger hostile before insert on public.media_job_uploads "
                   f"for each row execute function {hostile_trigger}")
    assert db.execute("select count(*) as n from pg_trigger where tgname = 'hostile'").fetchone() == {"n": 0}


def test_the_service_role_still_writes_upload_urls(db: Conn) -> None:
    job = db.execute("insert into public.media_jobs (type, payload) values ('media.probe', '{}') returning id").fetchone()
    assert job is not None
    with acting_as(db, "service_role"):
        db.execute("insert into public.media_job_uploads (job_id, bucket, path, upload_url, size, sha256) "
                   "values (%s, 'media-outputs', 'u/j/video.mp4', 'http://x/upload/1', 1, %s)", (job["id"], "0" * 64))
    assert db.execute("select count(*) as n from public.media_job_uploads").fetchone() == {"n": 1}


def test_no_public_table_lets_api_roles_truncate_or_add_triggers(db: Conn) -> None:
    held = db.execute("""
        select c.relname as table_name, r.rolname as role, p.privilege
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
          cross join (select unnest(%s::text[]) as rolname) r
          cross join (select unnest(%s::text[]) as privilege) p
         where c.relkind in ('r', 'p')
           and has_table_privilege(r.rolname, c.oid, p.privilege)""",
                      (list(API_ROLES), list(NOT_COVERED_BY_RLS))).fetchall()
    assert held == []
