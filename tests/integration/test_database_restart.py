"""Postgres restarts under a running worker: it logs, reconnects and carries on.

These tests run their own PostgreSQL (pgserver's binaries in a temporary directory) so that
restarting it disturbs nothing else.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.private_pg import PrivatePostgres
from tests.support.workers import ffmpeg_pids_for, insert_job, start_worker, wait_for_status, wait_until, worker_env

pytestmark = pytest.mark.slow


def test_worker_survives_restarts_while_idle_and_while_running(private_pg: PrivatePostgres, data_dir: Path,
                                                              tmp_path: Path) -> None:
    env = worker_env(private_pg.url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers",
                     WORKER_HEARTBEAT_SECONDS=0.5, WORKER_LEASE_SECONDS=20)
    log = tmp_path / "worker.log"
    worker = start_worker(env, log_path=log)
    try:
        wait_until(lambda: "worker_started" in log.read_text(), what="worker start")
        private_pg.restart(down_seconds=2)  # idle
        idle_job = insert_job(private_pg.url, "test.slow", {"seconds": 0.5})
        assert wait_for_status(private_pg.url, idle_job, {"completed", "failed"}, timeout=60)["status"] == "completed"

        running_job = insert_job(private_pg.url, "test.slow", {"seconds": 6})
        wait_until(lambda: bool(ffmpeg_pids_for(running_job)), what="ffmpeg to start")
        private_pg.restart(down_seconds=2)  # mid-job
        row = wait_for_status(private_pg.url, running_job, {"completed", "failed"}, timeout=90)
        assert worker.poll() is None, "worker died"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert row["status"] == "completed" and row["attempts"] == 1
    text = log.read_text()
    assert "database_unavailable" in text or "heartbeat_failed" in text
    assert code == 0


def test_sigterm_while_the_database_is_down_exits_promptly(private_pg: PrivatePostgres, data_dir: Path,
                                                         tmp_path: Path) -> None:
    env = worker_env(private_pg.url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers",
                     WORKER_POLL_INTERVAL_SECONDS=0.2)
    log = tmp_path / "worker.log"
    worker = start_worker(env, log_path=log)
    try:
        wait_until(lambda: "worker_started" in log.read_text(), what="worker start")
        private_pg.stop()
        wait_until(lambda: "database_unavailable" in log.read_text(), what="the worker to notice")
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
        private_pg.start()
    assert code == 0
