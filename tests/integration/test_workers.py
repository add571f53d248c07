"""The take-back of a dead worker's jobs, with real worker processes: at once on the same host
(pid and process-start identity), after the lease for another host's."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.presence import DEFAULT_TIMERS, HOST, add_presence, env_for, events, lease_to, presence
from tests.support.scrape import free_port, get, sample
from tests.support.workers import ffmpeg_pids_for, insert_job, job_row, run_cli, start_worker, wait_for_status, wait_until
from worker.db import WorkerStore, queries
from worker.process_identity import read_stat

pytestmark = pytest.mark.slow


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
    assert sample(metrics, "media_worker_jobs_taken_back_total", reason="lease_expired") == 0  # counted once
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
