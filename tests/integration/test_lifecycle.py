"""Crashes, shutdowns, cancellations, retries and wake-ups, with real worker processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.support.workers import (
    ffmpeg_pids_for,
    insert_job,
    job_row,
    lease_expired,
    run_cli,
    start_worker,
    wait_for_status,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow

TEST_HANDLERS = {"WORKER_HANDLER_MODULES": "tests.lifecycle_handlers"}


def env_for(db_url: str, data_dir: Path, **overrides: object) -> dict[str, str]:
    return worker_env(db_url, data_dir, **{**TEST_HANDLERS, **overrides})


def outputs_of(data_dir: Path, job_id: str) -> list[Path]:
    return sorted((data_dir / "storage" / "media-outputs" / "anonymous" / job_id).glob("*"))


def test_sigkill_mid_ffmpeg_another_worker_takes_the_job_back_once_the_lease_expired(
        db_url: str, data_dir: Path, tmp_path: Path) -> None:
    job_id = insert_job(db_url, "test.slow", {"seconds": 4})
    first = start_worker(env_for(db_url, data_dir, WORKER_LEASE_SECONDS=3, WORKER_HEARTBEAT_SECONDS=0.5),
                         log_path=tmp_path / "first.log")
    wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
    dead = job_row(db_url, job_id)["locked_by"]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wait_until(lambda: not ffmpeg_pids_for(job_id), what="the dead worker's ffmpeg to die with it")
    wait_until(lambda: lease_expired(db_url, job_id), what="the dead worker's lease to expire")
    row = job_row(db_url, job_id)
    assert row["status"] == "processing" and row["locked_by"] == dead and row["attempts"] == 1
    # The second worker's lease is long, so however late its heartbeats come on a loaded machine,
    # its own job is never taken back from it: this run is the second attempt and the last.
    second = start_worker(env_for(db_url, data_dir, WORKER_LEASE_SECONDS=300), log_path=tmp_path / "second.log")
    try:
        row = wait_for_status(db_url, job_id, {"completed", "failed"}, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    assert row["status"] == "completed" and row["attempts"] == 2, row["error"]
    (lost,) = row["errors"]  # the take-back names the dead slot in the job's history
    assert lost["attempt"] == 1 and lost["error"].startswith("worker lost") and lost["error"].endswith(dead), lost
    assert [p.name for p in outputs_of(data_dir, job_id)] == ["slow.mp4"]
    assert len(row["result"]["outputs"]) == 1


def test_many_workers_run_every_job_exactly_once(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    jobs, workers, slots = 2000, 8, 2
    # One rendezvous job per slot, first in line: each holds its slot until every worker process
    # has run a job, so no worker can take more than `slots` of them and each must take some.
    rendezvous = workers * slots
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("create table test_executions (n int not null, pid int not null)")
        conn.execute("insert into public.media_jobs (type, payload) "
                     "select 'test.record', jsonb_build_object('n', g) from generate_series(1, %s) g", (jobs,))
        conn.execute("insert into public.media_jobs (type, payload, priority) "
                     "select 'test.rendezvous', jsonb_build_object('n', g, 'workers', %s), 10 "
                     "from generate_series(%s::int, %s::int) g", (workers, jobs + 1, jobs + rendezvous))
    env = env_for(db_url, data_dir, WORKER_CONCURRENCY=slots)
    procs = [start_worker(env, "run", "--until-idle", log_path=tmp_path / f"w{i}.log") for i in range(workers)]
    codes = [w.wait(timeout=600) for w in procs]
    assert codes == [0] * workers
    with psycopg.connect(db_url) as conn:
        runs = conn.execute("select n, count(*) from test_executions group by n having count(*) <> 1").fetchall()
        total = conn.execute("select count(distinct n), count(distinct pid) from test_executions").fetchone()
        left = conn.execute("select status::text, error from public.media_jobs where status <> 'completed'").fetchall()
    assert runs == [], f"jobs run more than once: {runs[:10]}"
    assert left == [], f"{len(left)} jobs not completed, e.g. {left[:3]}"
    assert total == (jobs + rendezvous, workers), "every job ran, and every worker ran some"


@pytest.mark.parametrize(("timeout", "expected"), [(30, "completed"), (0.5, "pending")])
def test_sigterm_mid_job_finishes_or_releases(db_url: str, data_dir: Path, tmp_path: Path,
                                              timeout: float, expected: str) -> None:
    env = env_for(db_url, data_dir, WORKER_SHUTDOWN_TIMEOUT_SECONDS=timeout)
    job_id = insert_job(db_url, "test.slow", {"seconds": 3})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    row = job_row(db_url, job_id)
    assert row["status"] == expected
    if expected == "pending":
        assert row["attempts"] == 0 and row["locked_by"] is None and row["locked_until"] is None
        assert not ffmpeg_pids_for(job_id)


def test_second_signal_kills_ffmpeg_and_releases_at_once(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url, data_dir, WORKER_SHUTDOWN_TIMEOUT_SECONDS=600)
    job_id = insert_job(db_url, "test.slow", {"seconds": 30})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=20) == 0
    assert job_row(db_url, job_id)["status"] == "pending"
    assert not ffmpeg_pids_for(job_id)


def test_cancel_pending_and_running_jobs(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url, data_dir, WORKER_HEARTBEAT_SECONDS=0.5)
    running = insert_job(db_url, "test.slow", {"seconds": 60})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: bool(ffmpeg_pids_for(running)), what="ffmpeg to start")
        pending = insert_job(db_url, "test.slow", {"seconds": 1}, run_at="2999-01-01T00:00:00Z")
        assert "cancelled" in run_cli(["cancel", pending], env).stdout
        assert job_row(db_url, pending)["status"] == "cancelled"
        assert "cancel requested" in run_cli(["cancel", running], env).stdout
        row = wait_for_status(db_url, running, {"cancelled", "completed", "failed"}, timeout=10)
        wait_until(lambda: not ffmpeg_pids_for(running), timeout=5, what="ffmpeg to be killed")
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert row["status"] == "cancelled"
    assert outputs_of(data_dir, running) == []
    assert not list((data_dir / "tmp").glob(f"job-{running}*")), "work directory left behind"


def test_a_job_taken_over_by_another_worker_is_abandoned_without_writing(db_url: str, data_dir: Path,
                                                                         tmp_path: Path) -> None:
    env = env_for(db_url, data_dir, WORKER_HEARTBEAT_SECONDS=0.5)
    job_id = insert_job(db_url, "test.slow", {"seconds": 30})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("update public.media_jobs set locked_by = 'other-host:1:abc' where id = %s", (job_id,))
        wait_until(lambda: not ffmpeg_pids_for(job_id), timeout=10, what="ffmpeg to be killed")
        time.sleep(1)
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    row = job_row(db_url, job_id)
    assert row["status"] == "processing" and row["locked_by"] == "other-host:1:abc"
    assert row["result"] is None and outputs_of(data_dir, job_id) == []
    assert "lease_lost" in (tmp_path / "worker.log").read_text()


def test_transient_failures_retry_then_fail_with_history(db_url: str, data_dir: Path) -> None:
    job_id = insert_job(db_url, "test.flaky", {}, max_attempts=3)
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir, WORKER_RETRY_BASE_SECONDS=0))
    row = job_row(db_url, job_id)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["error"] == "storage is down (test) (gave up after 3 attempts)"
    assert [e["attempt"] for e in row["errors"]] == [1, 2, 3]


def test_transient_failure_waits_for_its_backoff(db_url: str, data_dir: Path) -> None:
    job_id = insert_job(db_url, "test.flaky", {})
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir, WORKER_RETRY_BASE_SECONDS=600))
    row = job_row(db_url, job_id)
    assert row["status"] == "pending" and row["attempts"] == 1 and row["stage"] == "retrying"
    # run_at and the failure's time come from one statement's clock: their difference is the delay.
    delay = (row["run_at"] - datetime.fromisoformat(row["errors"][-1]["at"])).total_seconds()
    assert 300 <= delay <= 600  # 600 s nominal, jittered down to half


def test_a_job_lost_too_often_fails_with_a_clear_message(db_url: str, data_dir: Path) -> None:
    lost = [{"attempt": n, "error": "worker lost (lease expired): h:1:x"} for n in (1, 2)]
    job_id = insert_job(db_url, "test.slow", {"seconds": 1}, status="processing", attempts=3, max_attempts=3,
                        locked_by="dead:1:x", locked_until="2000-01-01T00:00:00Z", errors=json.dumps(lost))
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir))
    row = job_row(db_url, job_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("worker lost (lease expired) 3 times")


def listening_connections(db_url: str) -> int:
    """Connections to this database whose last statement was a LISTEN: the worker's listener runs
    nothing else, so a live listener shows up here for as long as it is connected."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from pg_stat_activity "
                           "where datname = current_database() and query ilike 'listen %%'").fetchone()
    return int(row[0]) if row else 0


def test_insert_wakes_an_idle_worker_without_its_poll_timer(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url, data_dir, WORKER_POLL_INTERVAL_SECONDS=3600)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: listening_connections(db_url) == 1, what="the worker to LISTEN")
        first = insert_job(db_url, "test.slow", {"seconds": 0.2})
        wait_for_status(db_url, first, {"completed"}, timeout=60)
        # The round that completed it also looked for a next job and found none; the poll timer is
        # an hour away. Only the insert's NOTIFY can lead to this job's claim.
        second = insert_job(db_url, "test.slow", {"seconds": 0.2})
        row = wait_for_status(db_url, second, {"completed"}, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert row["attempts"] == 1


def test_transaction_pooler_mode_polls_instead_of_listening(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = env_for(db_url + ("&" if "?" in db_url else "?") + "pgbouncer=true", data_dir)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        wait_until(lambda: "worker_started" in (tmp_path / "worker.log").read_text(), what="start")
        job_id = insert_job(db_url, "test.slow", {"seconds": 0.5})
        wait_for_status(db_url, job_id, {"completed"}, timeout=60)
        listening = listening_connections(db_url)  # a listener would have connected at the first wait
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert listening == 0
    assert "transaction_pooler_detected" in (tmp_path / "worker.log").read_text()


def test_dedupe_key_is_unique_among_live_jobs(db_url: str, data_dir: Path) -> None:
    first = insert_job(db_url, "test.slow", {"seconds": 0.2}, dedupe_key="upload-42")
    with pytest.raises(psycopg.errors.UniqueViolation, match="media_jobs_dedupe_key_idx"):
        insert_job(db_url, "test.slow", {"seconds": 0.2}, dedupe_key="upload-42")
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir))
    assert job_row(db_url, first)["status"] == "completed"
    insert_job(db_url, "test.slow", {"seconds": 0.2}, dedupe_key="upload-42")  # finished keys may run again


def test_retry_and_status_commands(db_url: str, data_dir: Path) -> None:
    env = env_for(db_url, data_dir)
    job_id = insert_job(db_url, "test.flaky", {}, max_attempts=1)
    run_cli(["run", "--until-idle"], env)
    assert job_row(db_url, job_id)["status"] == "failed"
    status = run_cli(["status"], env).stdout
    assert "test.flaky" in status and "failed" in status
    assert "pending again" in run_cli(["retry", job_id], env).stdout
    row = job_row(db_url, job_id)
    assert row["status"] == "pending" and row["attempts"] == 0
    assert run_cli(["retry", job_id], env, check=False).returncode == 1


def test_housekeeping_deletes_old_finished_jobs_only(db_url: str, data_dir: Path) -> None:
    old = "now() - interval '40 days'"
    with psycopg.connect(db_url, autocommit=True) as conn:
        for status, age in (("completed", old), ("cancelled", old), ("failed", old), ("completed", "now()")):
            conn.execute(f"insert into public.media_jobs (type, status, completed_at) values ('t.x', %s, {age})",
                         (status,))
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir, JOB_RETENTION_DAYS=30, JOB_FAILED_RETENTION_DAYS=90))
    with psycopg.connect(db_url) as conn:
        left = sorted(r[0] for r in conn.execute("select status::text from public.media_jobs"))
    assert left == ["completed", "failed"]


def test_stale_work_directories_are_removed_at_start(db_url: str, data_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    stale = data_dir / "tmp" / f"job-00000000-0000-0000-0000-000000000000-{host}-{dead.pid}-1"
    other_host = data_dir / "tmp" / f"job-00000000-0000-0000-0000-000000000000-elsewhere-{dead.pid}-1"
    stale.mkdir(parents=True)
    other_host.mkdir()
    (stale / "input").write_bytes(b"x" * 1000)
    run_cli(["run", "--until-idle"], env_for(db_url, data_dir))
    assert not stale.exists()
    assert other_host.exists(), "another host's directory was removed on the strength of a local pid"


def database_now(db_url: str) -> datetime:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select clock_timestamp()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def seconds_left_at_some_point(reported: float, end: datetime, before: datetime, after: datetime) -> bool:
    """Whether `reported` (rounded to 0.1 s) is the time left until `end` at some moment between
    `before` and `after`: true however long the run between them took."""
    return (end - after).total_seconds() - 0.05 <= reported <= (end - before).total_seconds() + 0.05


def test_until_idle_says_which_jobs_are_not_claimable_yet(db_url: str, data_dir: Path) -> None:
    leased = insert_job(db_url, "test.slow", {"seconds": 1})
    retrying = insert_job(db_url, "test.slow", {"seconds": 1})
    other_type = insert_job(db_url, "media.probe", {"input": {"path": "anonymous/x/y.mp4"}})
    with psycopg.connect(db_url, autocommit=True) as conn:  # as workers killed a moment ago leave them
        for job_id, lease in ((leased, "1 hour"), (other_type, "30 minutes")):
            conn.execute("update public.media_jobs set status = 'processing', locked_by = 'gone:1:x/0', "
                         "attempts = 1, locked_until = now() + %s::interval where id = %s", (lease, job_id))
        conn.execute("update public.media_jobs set run_at = now() + interval '2 hours' where id = %s", (retrying,))
    before = database_now(db_url)
    proc = run_cli(["run", "--until-idle"], env_for(db_url, data_dir, WORKER_JOB_TYPES="test.slow"))
    after = database_now(db_url)
    event = next(json.loads(line) for line in proc.stderr.splitlines() if "jobs_not_claimable_yet" in line)
    assert event["leased_to_other_workers"] == 1  # the media.probe job is not this worker's business
    assert seconds_left_at_some_point(event["first_lease_ends_in_seconds"], job_row(db_url, leased)["locked_until"],
                                      before, after), event
    assert event["waiting_for_retry"] == 1
    assert seconds_left_at_some_point(event["first_retry_in_seconds"], job_row(db_url, retrying)["run_at"],
                                      before, after), event
    assert job_row(db_url, leased)["status"] == "processing"  # not taken before its lease ends
