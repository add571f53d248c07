"""The embedded PostgreSQL stops with its last user, also when that user was killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.workers import ROOT, wait_until
from worker.process_identity import pid_exists

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mw-embedded-"))
    os.chmod(path, 0o755)  # as root, pgserver runs postgres as an unprivileged user
    yield path
    postmaster = path / "postgres" / "postmaster.pid"
    if postmaster.exists():  # a failed test must not leave its server behind
        os.kill(int(postmaster.read_text().split()[0]), signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)


def embedded_worker(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """`python worker.py` with nothing configured but its data directory: the embedded mode."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "SUPABASE_", "STORAGE_", "DATABASE_URL"))}
    env.update({"WORKER_DATA_DIR": str(data_dir), "WORKER_TEMP_DIR": str(data_dir / "tmp"), "LOG_FORMAT": "json"})
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def test_the_server_stops_after_its_only_user_was_killed_and_after_a_clean_exit(data_dir: Path,
                                                                                 tmp_path: Path) -> None:
    killed = embedded_worker(data_dir, tmp_path / "killed.log")
    wait_until(lambda: "worker_started" in (tmp_path / "killed.log").read_text(), timeout=120, what="start")
    first_server = postmaster_pid(data_dir)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    wait_until(lambda: not pid_exists(first_server), timeout=60, what="the server to stop after its user died")

    # A worker started after the crash, and stopped cleanly, stops the server too: the dead
    # process left on pgserver's list of users no longer keeps it running.
    clean = embedded_worker(data_dir, tmp_path / "clean.log")
    wait_until(lambda: "worker_started" in (tmp_path / "clean.log").read_text(), timeout=120, what="restart")
    second_server = postmaster_pid(data_dir)
    clean.send_signal(signal.SIGTERM)
    assert clean.wait(timeout=60) == 0
    wait_until(lambda: not pid_exists(second_server), timeout=30, what="the server to stop after a clean exit")
