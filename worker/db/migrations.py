"""Apply supabase/migrations in order, recorded where the Supabase CLI records them.

Using `supabase_migrations.schema_migrations` means `supabase db push` and
`python worker.py migrate` agree on what has been applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from worker.db.connection import connect, translate_errors
from worker.errors import MigrationsNotCurrent

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "supabase" / "migrations"
COMPAT_SQL = Path(__file__).resolve().parent / "sql" / "compat_plain_postgres.sql"
MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")

# Same table the Supabase CLI keeps, so both tools see the same history.
CREATE_HISTORY = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
"""
APPLIED_VERSIONS = "select version from supabase_migrations.schema_migrations"
RECORD_MIGRATION = """
insert into supabase_migrations.schema_migrations (version, name, statements)
values (%(version)s, %(name)s, array[%(sql)s])
"""
# Serialise concurrent `migrate` runs (several workers starting at once).
MIGRATION_LOCK = "select pg_advisory_xact_lock(hashtext('media_worker_migrations'))"
# The compatibility schema marks `auth` as its own, so that later versions can refresh it. Before
# the mark existed it was recognisable by shape: an auth.users of exactly (id, email, created_at)
# and none of Supabase Auth's tables. (Catalog look-ups, not to_regclass: a role without USAGE on
# auth may run migrate too.) Anything else is Supabase's (or the user's) and never
# touched; nor is a schema another role owns (its owner applies the refresh).
COMPAT_MARK = "media-worker compatibility schema"
AUTH_SCHEMA = """
select n.oid is not null as present,
       coalesce(pg_get_userbyid(n.nspowner) = current_user, false) as owned,
       coalesce(obj_description(n.oid, 'pg_namespace'), '') as comment,
       coalesce((select array_agg(a.attname::text order by a.attname)
                 from pg_attribute a join pg_class c on c.oid = a.attrelid
                 where c.relnamespace = n.oid and c.relname = 'users' and a.attnum > 0 and not a.attisdropped)
                = array['created_at', 'email', 'id'], false)
         and not exists (select from pg_class c where c.relnamespace = n.oid and c.relname = 'identities')
         as compat_shaped
from (select 1) as one left join pg_namespace n on n.nspname = 'auth'
"""
HAS_HISTORY = "select to_regclass('supabase_migrations.schema_migrations') is not null as present"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def available_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in version order; raise ValueError for a misnamed file."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files must be named <14-digit timestamp>_<name>.sql")
        found.append(Migration(match.group(1), match.group(2), path))
    return found


def install_compat_schema(conn: psycopg.Connection[dict[str, Any]]) -> bool:
    """Install (or refresh: it is idempotent) the Supabase compatibility schema on plain Postgres;
    return True if it was applied, False on a database whose `auth` schema is not ours."""
    with conn.transaction():
        conn.execute(MIGRATION_LOCK)
        row = conn.execute(AUTH_SCHEMA).fetchone()
        ours = row is not None and (row["comment"].startswith(COMPAT_MARK) or row["compat_shaped"])
        if row and row["present"] and not (ours and row["owned"]):
            return False
        conn.execute(COMPAT_SQL.read_text())
    return True


def pending_migrations(conn: psycopg.Connection[dict[str, Any]]) -> list[Migration]:
    row = conn.execute(HAS_HISTORY).fetchone()
    applied = set()
    if row and row["present"]:
        applied = {r["version"] for r in conn.execute(APPLIED_VERSIONS)}
    return [m for m in available_migrations() if m.version not in applied]


def apply_migrations(url: str) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the applied names."""
    applied: list[str] = []
    with translate_errors(), connect(url, application_name="media-worker-migrate") as conn:
        install_compat_schema(conn)
        conn.execute(CREATE_HISTORY)
        for migration in available_migrations():
            with conn.transaction():
                conn.execute(MIGRATION_LOCK)
                if migration not in pending_migrations(conn):
                    continue
                conn.execute(migration.sql)
                conn.execute(RECORD_MIGRATION, {
                    "version": migration.version, "name": migration.name, "sql": migration.sql})
            applied.append(f"{migration.version}_{migration.name}")
    return applied


def check_migrations_current(url: str) -> None:
    """Raise MigrationsNotCurrent, with the fix, unless every migration is applied."""
    with translate_errors(), connect(url, application_name="media-worker-check") as conn:
        pending = pending_migrations(conn)
        has_table = conn.execute("select to_regclass('public.media_jobs') is not null as present").fetchone()
    if pending or not (has_table and has_table["present"]):
        names = ", ".join(f"{m.version}_{m.name}" for m in pending) or "(none recorded)"
        raise MigrationsNotCurrent(
            f"the database is not migrated: pending {names}. "
            "Run `python worker.py migrate` (or `supabase db push` for a hosted project), then start the worker.")
