"""Recovery benchmark: from SIGKILL of a worker mid-job to the job running again.

    python bench/recovery.py [--same-host-runs 5] [--other-host-runs 1]

Uses BENCH_DATABASE_URL or TEST_DATABASE_URL (a server where it may create the database
mw_bench_recovery), else the embedded PostgreSQL. Every worker runs with the default settings
(60 s lease, 10 s heartbeat, 2 s poll) as a real process, on a real ffmpeg job (test.slow from
tests/lifecycle_handlers.py). Two cases:
- same host: the killed worker is restarted at once, as systemd's Restart= does; the new process
  sees that the old one is gone (pid and process-start identity) and takes its job back;
- another host: the job and presence row of the killed worker are made to name another host
  (what a worker there would have left), so the new worker can only wait for the lease to expire.
"Running again" is the moment the row shows the second attempt claimed; the start-up of the
new process (python, ffmpeg checks, hardware probe) is counted in it and also shown apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: put the repository first on the path, not bench/, so `import queue`
# finds the stdlib and `worker` is importable.
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import psycopg  # noqa: E402

from worker.db import apply_migrations  # noqa: E402

JOB = "insert into public.media_jobs (type, payload) values ('test.slow', '{\"seconds\": 120}') returning id"
# What another host's worker would have left: its lease and presence row under its own host name.
MOVE_LEASE_TO_OTHER_HOST = """
update public.media_jobs set locked_by = 'other-host' || substr(locked_by, strpos(locked_by, ':'))
where id = %(id)s
"""
MOVE_PRESENCE_TO_OTHER_HOST = """
update public.media_workers set host = 'other-host', id = 'other-host' || substr(id, strpos(id, ':'))
"""


def bench_database(name: str = "mw_bench_recovery") -> str:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        from worker.db.embedded import start_embedded_postgres

        base = start_embedded_postgres(ROOT / ".data-bench")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    apply_migrations(url)
    return url


def worker_env(url: str, data_dir: Path) -> dict[str, str]:
    """The default settings: only where the database, files and the test handler are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "SUPABASE_", "UPLOAD_"))}
    env.update({"DATABASE_URL": url, "WORKER_DATA_DIR": str(data_dir), "WORKER_TEMP_DIR": str(data_dir / "tmp"),
                "WORKER_HANDLER_MODULES": "tests.lifecycle_handlers", "LOG_FORMAT": "json",
                "STORAGE_BACKEND": "local"})
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_row(conn: psycopg.Connection, job_id: object, sql: str, timeout: float = 300) -> float:
    """Poll (every 5 ms) until `sql` about the job is true; the monotonic time it became so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(f"select {sql} from public.media_jobs where id = %s", (job_id,)).fetchone()
        if row and row[0]:
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {sql}")


def wait_log(log: Path, event: str, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while f'"{event}"' not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"no {event} in {log}")
        time.sleep(0.005)
    return time.monotonic()


def stop(proc: subprocess.Popen[bytes]) -> None:
    for _ in range(2):  # the second signal releases the job at once
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
    proc.wait(timeout=60)


def one_run(url: str, data_dir: Path, other_host: bool) -> tuple[float, float]:
    """Kill a worker mid-ffmpeg and restart one; (seconds to the job running again, of which start-up)."""
    env = worker_env(url, data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from public.media_jobs; delete from public.media_workers")
        job_id = conn.execute(JOB).fetchone()[0]  # type: ignore[index]
        first = start(env, data_dir / "first.log")
        wait_row(conn, job_id, "status = 'processing' and progress > 0")  # ffmpeg is running
        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait()
        if other_host:
            conn.execute(MOVE_LEASE_TO_OTHER_HOST, {"id": job_id})
            conn.execute(MOVE_PRESENCE_TO_OTHER_HOST)
        second = start(env, data_dir / "second.log")
        try:
            started = wait_log(data_dir / "second.log", "worker_started")
            running = wait_row(conn, job_id, "status = 'processing' and attempts = 2")
        finally:
            stop(second)
    return running - killed, started - killed


def report(name: str, runs: list[tuple[float, float]]) -> float:
    again = [r[0] for r in runs]
    startup = statistics.median(r[1] for r in runs)
    print(f"{name:<34} median {statistics.median(again):6.2f} s  (min {min(again):.2f}, max {max(again):.2f}; "
          f"new process start-up {startup:.2f} s; {len(runs)} runs)", flush=True)
    return statistics.median(again)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--same-host-runs", type=int, default=5)
    parser.add_argument("--other-host-runs", type=int, default=1)
    args = parser.parse_args()
    url = bench_database()
    data_dir = Path(tempfile.mkdtemp(prefix="mw-bench-recovery-"))
    same = report("same host, immediate restart", [one_run(url, data_dir, False) for _ in range(args.same_host_runs)])
    if args.other_host_runs:
        other = report("another host (lease expiry)", [one_run(url, data_dir, True)
                                                       for _ in range(args.other_host_runs)])
        print(f"{'same host / another host':<34} {same / other:.3f}")


if __name__ == "__main__":
    main()
