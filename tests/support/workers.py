"""Worker processes, job rows, and waiting for events instead of sleeping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def worker_env(db_url: str, data_dir: Path, **overrides: Any) -> dict[str, str]:
    """Environment for a worker subprocess: test database, local storage, fast timers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "SUPABASE_", "UPLOAD_", "STORAGE_"))}
    if "SUPABASE_URL" not in overrides:  # a DATABASE_URL alone is refused unless local storage is asked for
        env["STORAGE_BACKEND"] = "local"
    env.update({
        "DATABASE_URL": db_url,
        "WORKER_DATA_DIR": str(data_dir),
        "WORKER_TEMP_DIR": str(data_dir / "tmp"),
        "WORKER_POLL_INTERVAL_SECONDS": "0.2",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "WORKER_LEASE_SECONDS": "10",
        "WORKER_RETRY_BASE_SECONDS": "0",
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python worker.py ARGS` to completion."""
    proc = subprocess.run([sys.executable, str(ROOT / "worker.py"), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"worker.py {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_worker(env: dict[str, str], *args: str, log_path: Path | None = None) -> subprocess.Popen[str]:
    """Start the daemon as a real process; logs go to log_path (or are discarded)."""
    out = open(log_path, "w") if log_path else None  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py"), *args], env=env, cwd=ROOT,
                                stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True)
    finally:
        if out:
            out.close()  # the child holds its own copy


def wait_until(predicate: Callable[[], object], timeout: float = 30, what: str = "condition") -> None:
    """Poll predicate until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def ffmpeg_pids_for(job_id: str) -> list[int]:
    """ffmpeg processes whose command line mentions this job (its work directory does)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"ffmpeg") and any(job_id.encode() in part for part in cmdline):
            pids.append(int(proc.name))
    return pids


def lease_expired(db_url: str, job_id: str) -> bool:
    """The job's lease has run out by the database's clock, the one claims go by."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select locked_until < now() from public.media_jobs where id = %s", (job_id,)).fetchone()
    return bool(row and row[0])


def job_row(db_url: str, job_id: str) -> dict[str, Any]:
    from psycopg.rows import dict_row

    with psycopg.connect(db_url, row_factory=dict_row) as conn:  # type: ignore[arg-type]
        row = conn.execute("select * from public.media_jobs where id = %s", (job_id,)).fetchone()
    assert row is not None, f"no job {job_id}"
    return row


def wait_for_status(db_url: str, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    """Poll the job row until its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        row = job_row(db_url, job_id)
        if row["status"] in statuses:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {row['status']} after {timeout}s: {row}")
        time.sleep(0.1)


def insert_job(db_url: str, job_type: str, payload: dict[str, Any], **columns: Any) -> str:
    cols = {"type": job_type, "payload": json.dumps(payload), **columns}
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(f"insert into public.media_jobs ({names}) values ({marks}) returning id",
                           list(cols.values())).fetchone()
    assert row is not None
    return str(row[0])


def put_local_object(data_dir: Path, bucket: str, path: str, source: Path | bytes) -> None:
    """Place an object in the local storage backend, as an upload by the web app would."""
    target = data_dir / "storage" / bucket / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
