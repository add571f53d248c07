"""Worker presence (public.media_workers) and the same-host take-back of a dead worker's jobs,
with real worker processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.private_pg import PrivatePostgres
from tests.support.scrape import free_port, get, sample
from tests.support.workers import (
    ROOT,
    ffmpeg_pids_for,
    insert_job,
    job_row,
    run_cli,
    start_worker,
    wait_for_status,
    wait_until,
    worker_env,
)
from worker.db import WorkerStore, queries
from worker.process_identity import read_stat, this_process

pytestmark = pytest.mark.slow

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


def test_sigkill_then_a_restart_on_the_same_host_runs_the_job_again_before_its_lease_ends(
        db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url, data_dir, **DEFAULT_TIMERS)
    job_id = insert_job(db_url, "test.slow", {"seconds": 4})
    first = start_worker(env, log_path=tmp_path / "first.log")
    wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_lease_ends = job_row(db_url, job_id)["locked_until"]
    port = free_port()
    second = start_worker({**env, "HEALTH_PORT": str(port)}, log_path=tmp_path / "second.log")
    try:
        row = wait_for_status(db_url, job_id, {"completed", "failed"}, timeout=120)
        metrics = get(port, "/metrics")[1]
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    assert row["status"] == "completed" and row["attempts"] == 2
    [lost] = row["errors"]
    assert lost["attempt"] == 1 and lost["error"].startswith("worker lost (process ended) while running attempt 1")
    # Taken back from the dead process, not from an expired lease: before the old lease ran out.
    with psycopg.connect(db_url) as conn:
        early = conn.execute("select %s::timestamptz < %s", (lost["at"], killed_lease_ends)).fetchone()
    assert early == (True,)
    assert [e["reason"] for e in events(tmp_path / "second.log", "job_taken_back")] == ["process_ended"]
    assert [e["found"] for e in events(tmp_path / "second.log", "dead_workers_removed")] == ["at_start"]
    assert len(row["result"]["outputs"]) == 1
    assert sample(metrics, "media_worker_jobs_taken_back_total", reason="process_ended") == 1
    assert sample(metrics, "media_worker_workers_live", type="*") == 1  # the dead worker's row went with its job


def test_a_reused_pid_is_neither_taken_for_the_old_worker_nor_for_a_dead_one(db_url: str, data_dir: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "120"])
    try:
        start = read_stat(sleeper.pid).start_ticks  # type: ignore[union-attr]
        assert start is not None
        reused = insert_job(db_url, "test.slow", {"seconds": 0.2})
        alive = insert_job(db_url, "test.slow", {"seconds": 0.2})
        elsewhere = insert_job(db_url, "test.slow", {"seconds": 0.2})
        # The same live pid: once recorded with another start time (its worker died and the pid
        # was reused), once with its own (the worker is that process).
        add_presence(db_url, f"{HOST}:{sleeper.pid}:reused", sleeper.pid, start + 7)
        add_presence(db_url, f"{HOST}:{sleeper.pid}:alive", sleeper.pid, start)
        add_presence(db_url, f"{HOST}:999999:otherboot", 999999, 1, boot_id="another-boot")
        lease_to(db_url, reused, f"{HOST}:{sleeper.pid}:reused/0")
        lease_to(db_url, alive, f"{HOST}:{sleeper.pid}:alive/0")
        lease_to(db_url, elsewhere, f"{HOST}:999999:otherboot/1")
        run_cli(["run", "--until-idle"], env_for(db_url, data_dir))
    finally:
        sleeper.kill()
        sleeper.wait()
    row = job_row(db_url, reused)
    assert row["status"] == "completed" and row["attempts"] == 2
    assert row["errors"][0]["error"].startswith("worker lost (process ended) while running attempt 1")
    for job_id in (alive, elsewhere):  # alive, or not this host's to judge: they wait for their lease
        assert job_row(db_url, job_id)["status"] == "processing" and job_row(db_url, job_id)["errors"] == []
    assert presence(db_url, f"{HOST}:{sleeper.pid}:reused") is None
    assert presence(db_url, f"{HOST}:{sleeper.pid}:alive") is not None


def test_until_idle_takes_back_a_job_whose_worker_dies_while_it_runs(db_url: str, data_dir: Path,
                                                                    tmp_path: Path) -> None:
    holder = subprocess.Popen(["sleep", "120"])  # stands in for another worker process of this host
    stat = read_stat(holder.pid)
    assert stat is not None
    add_presence(db_url, f"{HOST}:{holder.pid}:other", holder.pid, stat.start_ticks)
    leased = insert_job(db_url, "test.slow", {"seconds": 0.2})
    lease_to(db_url, leased, f"{HOST}:{holder.pid}:other/0")
    first = insert_job(db_url, "test.slow", {"seconds": 3})
    # Renewals far apart: the take-back below must come from --until-idle, not the presence timer.
    run = start_worker(env_for(db_url, data_dir, WORKER_LEASE_SECONDS=60, WORKER_HEARTBEAT_SECONDS=19),
                       "run", "--until-idle", log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: job_row(db_url, first)["status"] == "processing", what="the first job to start")
        holder.kill()
        holder.wait()
        assert run.wait(timeout=60) == 0
    finally:
        holder.kill()
        if run.poll() is None:
            run.kill()
    row = job_row(db_url, leased)
    assert row["status"] == "completed", row
    assert row["errors"][0]["error"].startswith("worker lost (process ended)")
    assert [e["found"] for e in events(tmp_path / "worker.log", "dead_workers_removed")] == ["when_idle"]


def test_workers_lists_a_running_worker_then_stale_after_sigkill_and_gone_after_a_clean_exit(
        db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url, data_dir)
    job_id = insert_job(db_url, "test.slow", {"seconds": 60})
    first = start_worker(env, log_path=tmp_path / "first.log")
    wait_until(lambda: job_row(db_url, job_id)["status"] == "processing", what="the job to start")
    first_id = started_worker_id(tmp_path / "first.log")
    assert first_id is not None
    listing = run_cli(["workers"], env).stdout
    line = next(line for line in listing.splitlines() if line.startswith(first_id))
    assert "running, 1 job(s)" in line and " cpu " in line and " all " in line
    assert job_id in listing
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    line = next(line for line in run_cli(["workers"], env).stdout.splitlines() if line.startswith(first_id))
    assert "stale (process ended), 1 job(s)" in line

    second = start_worker({**env, "WORKER_SHUTDOWN_TIMEOUT_SECONDS": "60"}, log_path=tmp_path / "second.log")
    wait_until(lambda: job_row(db_url, job_id)["attempts"] == 2, what="the job to be taken back and run again")
    second_id = started_worker_id(tmp_path / "second.log")
    assert second_id is not None and presence(db_url, first_id) is None
    second.send_signal(signal.SIGTERM)
    wait_until(lambda: (presence(db_url, second_id) or {}).get("state") == "draining", what="draining")
    second.send_signal(signal.SIGTERM)  # release the job now
    assert second.wait(timeout=30) == 0
    assert presence(db_url, second_id) is None
    assert "no workers" in run_cli(["workers"], env).stdout


def test_enqueue_wait_with_no_worker_says_so_and_keeps_waiting(db_url: str, data_dir: Path, tmp_path: Path,
                                                              sample_clip: Path) -> None:
    env = worker_env(db_url, data_dir)
    err = tmp_path / "enqueue.err"
    with open(err, "w") as stderr:
        enqueue = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "enqueue", "media.probe",
                                    "--input", str(sample_clip), "--wait"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    worker = None
    try:
        hint = "no live worker takes media.probe: start one with `python worker.py`"
        wait_until(lambda: hint in err.read_text(), what="the hint")
        assert enqueue.poll() is None, "enqueue --wait stopped waiting"
        worker = start_worker(env, log_path=tmp_path / "worker.log")
        assert enqueue.wait(timeout=60) == 0
    finally:
        for proc in (enqueue, worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


def test_status_counts_live_workers_by_job_type(db_url: str, data_dir: Path) -> None:
    add_presence(db_url, "elsewhere:7:abc", 7, 1, host="elsewhere", job_types=("test.slow",))
    add_presence(db_url, "elsewhere:8:old", 8, 1, host="elsewhere", seen="now() - interval '1 hour'")
    dead = subprocess.Popen(["true"])
    dead.wait()  # seen a moment ago, but its process is gone: not live either
    add_presence(db_url, f"{HOST}:{dead.pid}:gone", dead.pid, 1, job_types=("media.probe",))
    insert_job(db_url, "media.probe", {"input": {"path": "anonymous/x/y.mp4"}}, run_at="2999-01-01T00:00:00Z")
    out = run_cli(["status"], env_for(db_url, data_dir)).stdout
    assert "live workers: 1" in out  # the one not seen for an hour is not live
    assert "test.slow                1 live worker(s)" in out
    assert "media.probe              0 live worker(s): start one with `python worker.py`" in out


def test_a_presence_row_deleted_under_a_running_worker_is_recreated(db_url: str, data_dir: Path,
                                                                   tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    worker = start_worker(env_for(db_url, data_dir), log_path=log)
    try:
        wait_until(lambda: started_worker_id(log) is not None, what="start")
        worker_id = started_worker_id(log)
        assert worker_id is not None
        wait_until(lambda: presence(db_url, worker_id) is not None, what="the presence row")
        started_at = presence(db_url, worker_id)["started_at"]  # type: ignore[index]
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("delete from public.media_workers")  # as housekeeping elsewhere after a long pause
        wait_until(lambda: presence(db_url, worker_id) is not None, what="the row to come back")
        assert presence(db_url, worker_id)["started_at"] == started_at  # type: ignore[index]
        assert events(log, "presence_row_recreated")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0


def test_presence_writes_failing_while_the_database_is_away_never_stop_a_job(
        private_pg: PrivatePostgres, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(private_pg.url, data_dir, WORKER_HEARTBEAT_SECONDS=0.3, WORKER_LEASE_SECONDS=20)
    log = tmp_path / "worker.log"
    worker = start_worker(env, log_path=log)
    try:
        job_id = insert_job(private_pg.url, "test.slow", {"seconds": 6})
        wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
        private_pg.stop()
        wait_until(lambda: bool(events(log, "presence_not_written")), what="a presence write to fail")
        private_pg.start()
        row = wait_for_status(private_pg.url, job_id, {"completed", "failed"}, timeout=90)
        assert worker.poll() is None, "worker died"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert row["status"] == "completed" and row["attempts"] == 1 and row["errors"] == []
    assert code == 0


def test_two_take_backs_at_once_take_the_job_once_and_count_one_attempt(db_url: str) -> None:
    job_id = insert_job(db_url, "test.slow", {"seconds": 1})
    lease_to(db_url, job_id, f"{HOST}:1:dead/0")
    store = WorkerStore(db_url, "racer", 60)
    with psycopg.connect(db_url) as first:  # holds the row, as a take-back in flight would
        first.execute("select 1 from public.media_jobs where id = %s for update", (job_id,))
        taken: list[Any] = []
        racer = threading.Thread(target=lambda: taken.extend(store.take_back_jobs_of([f"{HOST}:1:dead"])))
        racer.start()
        wait_until(lambda: waiting_on_a_lock(db_url), what="the second take-back to wait on the row")
        rows = first.execute(queries.TAKE_BACK_ENDED_WORKERS_JOBS, {"workers": [f"{HOST}:1:dead"]}).fetchall()
        first.commit()
        racer.join(timeout=30)
    assert len(rows) == 1 and taken == []
    claimed = store.claim_next_job()
    store.close()
    assert claimed is not None and claimed.id == rows[0][0] and claimed.attempts == 2 and not claimed.taken_back
    assert len(job_row(db_url, job_id)["errors"]) == 1


def waiting_on_a_lock(db_url: str) -> bool:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from pg_stat_activity where datname = current_database() "
                           "and wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


def test_an_expired_lease_of_another_host_is_taken_back_counted_and_logged(db_url: str, data_dir: Path,
                                                                          tmp_path: Path) -> None:
    job_id = insert_job(db_url, "test.slow", {"seconds": 0.2})
    lease_to(db_url, job_id, "elsewhere:1:x/0", seconds=-1)
    port, log = free_port(), tmp_path / "worker.log"
    worker = start_worker(env_for(db_url, data_dir, HEALTH_PORT=port), log_path=log)
    try:
        wait_for_status(db_url, job_id, {"completed"})
        wait_until(lambda: sample(get(port, "/metrics")[1], "media_worker_jobs_taken_back_total",
                                  reason="lease_expired") == 1, what="the counter")
        metrics = get(port, "/metrics")[1]
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert sample(metrics, "media_worker_jobs_taken_back_total", reason="process_ended") == 0
    assert [e["reason"] for e in events(log, "job_taken_back")] == ["lease_expired"]


def test_housekeeping_deletes_workers_not_seen_for_several_leases(db_url: str, data_dir: Path) -> None:
    add_presence(db_url, "elsewhere:1:old", 1, 1, host="elsewhere", seen="now() - interval '1 day'")
    add_presence(db_url, "elsewhere:2:new", 2, 1, host="elsewhere")
    insert_job(db_url, "test.slow", {"seconds": 0.5})  # keeps the daemon's main loop turning
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir))
    assert presence(db_url, "elsewhere:1:old") is None
    assert presence(db_url, "elsewhere:2:new") is not None


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_web_app_roles_cannot_see_workers(db_url: str, role: str) -> None:
    add_presence(db_url, "elsewhere:1:x", 1, 1, host="elsewhere")
    with psycopg.connect(db_url) as conn:
        conn.execute(f"set role {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from public.media_workers")
    with psycopg.connect(db_url) as conn:
        published = conn.execute("select count(*) from pg_publication_tables where tablename = 'media_workers'")
        assert published.fetchone() == (0,)
