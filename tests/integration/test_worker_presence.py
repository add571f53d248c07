"""Worker presence (public.media_workers) and what the command line shows of it, with real worker
processes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.presence import HOST, add_presence, env_for, events, presence, started_worker_id
from tests.support.private_pg import PrivatePostgres
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

pytestmark = pytest.mark.slow


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


def test_housekeeping_deletes_workers_not_seen_for_several_leases(db_url: str, data_dir: Path) -> None:
    add_presence(db_url, "elsewhere:1:old", 1, 1, host="elsewhere", seen="now() - interval '1 day'")
    add_presence(db_url, "elsewhere:2:new", 2, 1, host="elsewhere")
    insert_job(db_url, "test.slow", {"seconds": 1})  # keeps the daemon's main loop turning
    log = run_cli(["run", "--until-idle"], env_for(db_url, data_dir)).stderr
    assert presence(db_url, "elsewhere:1:old") is None, log[-3000:]
    assert presence(db_url, "elsewhere:2:new") is not None, log[-3000:]
    assert '"stale_workers_deleted"' in log


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
