"""What an operator reads when stopping a worker: the first signal says what a second one does,
and a released job is named."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.support.workers import ffmpeg_pids_for, insert_job, start_worker, wait_until, worker_env

pytestmark = pytest.mark.slow


def test_shutdown_lines_say_what_a_second_signal_does_and_which_job_is_released(
        db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers",
                     WORKER_SHUTDOWN_TIMEOUT_SECONDS=600)
    job_id = insert_job(db_url, "test.slow", {"seconds": 30})
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    wait_until(lambda: bool(ffmpeg_pids_for(job_id)), what="ffmpeg to start")
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: "shutdown_started" in (tmp_path / "worker.log").read_text(), what="the first signal's line")
    worker.send_signal(signal.SIGINT)
    assert worker.wait(timeout=30) == 0
    events = {e["event"]: e for e in (json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
                                      if line.startswith("{"))}
    assert "a second SIGINT/SIGTERM releases them at once" in events["shutdown_started"]["hint"]
    assert events["releasing_job"]["job_id"] == job_id
