"""Postgres restarts under a running worker: it logs, reconnects and carries on.

These tests run their own PostgreSQL (pgserver's binaries in a temporary directory) so that
restarting it disturbs nothing else.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import insert_job, start_worker, wait_for_status, worker_env
from tests.integration.test_lifecycle import ffmpeg_pids_for, wait_until
from worker.db import apply_migrations

pytestmark = pytest.mark.slow


class PrivatePostgres:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver import _commands

        self._pg_ctl = _commands.pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="mw-restart-pg-"))
        self.dir.chmod(0o755)
        self.server = pgserver.get_server(self.dir / "pg", cleanup_mode="delete")
        self.url = self.server.get_uri()

    def restart(self, down_seconds: float) -> None:
        """Stop the server (fast: connections are cut), stay down a while, start it again."""
        opts = (self.server.pgdata / "postmaster.opts").read_text().split()
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)
        time.sleep(down_seconds)
        # postmaster.opts holds the original command line: reuse its -h/-k/-p options.
        options = " ".join(o.strip('"') if o.startswith('"-') else o for o in opts[1:])
        self._pg_ctl(["-w", "-o", options, "-l", str(self.server.log), "start"],
                     pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    apply_migrations(pg.url)
    yield pg
    pg.close()


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
