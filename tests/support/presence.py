"""Presence rows, leases and worker logs, for the tests of worker presence and take-back."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.support.workers import worker_env
from worker.process_identity import this_process

HOST = socket.gethostname()
TEST_HANDLERS = {"WORKER_HANDLER_MODULES": "tests.lifecycle_handlers"}
DEFAULT_TIMERS = {"WORKER_LEASE_SECONDS": 60, "WORKER_HEARTBEAT_SECONDS": 10}


def env_for(db_url: str, data_dir: Path, **overrides: object) -> dict[str, str]:
    return worker_env(db_url, data_dir, **{**TEST_HANDLERS, **overrides})


def started_worker_id(log: Path) -> str | None:
    for line in log.read_text().splitlines():
        if '"worker_started"' in line:
            return str(json.loads(line)["worker_id"])
    return None


def events(log: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"{name}"' in line]


def presence(db_url: str, worker_id: str) -> dict[str, Any] | None:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:  # type: ignore[arg-type]
        return conn.execute("select * from public.media_workers where id = %s", (worker_id,)).fetchone()


def add_presence(db_url: str, worker_id: str, pid: int, start_ticks: int | None, boot_id: str | None = None,
                 host: str = HOST, job_types: tuple[str, ...] = (), seen: str = "now()") -> None:
    """A presence row as a worker with this identity would have written it."""
    me = this_process()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"insert into public.media_workers (id, host, pid, boot_id, pid_namespace, process_start, "
                     f"job_types, last_seen_at) values (%s, %s, %s, %s, %s, %s, %s, {seen})",
                     (worker_id, host, pid, boot_id or me.boot_id, me.pid_namespace, start_ticks, list(job_types)))


def lease_to(db_url: str, job_id: str, holder: str, seconds: float = 45) -> None:
    """Make the job look claimed by `holder` (attempt 1), as a worker killed a moment ago leaves it."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update public.media_jobs set status = 'processing', locked_by = %s, attempts = 1, "
                     "locked_until = now() + make_interval(secs => %s) where id = %s", (holder, seconds, job_id))
