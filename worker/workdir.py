"""A job's private work directory, and the sweep of those left by dead worker processes."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

from worker.db import ClaimedJob
from worker.process_identity import pid_exists

WORK_DIR_PREFIX = "job-"
HOST = socket.gethostname()


class WorkDir:
    """A job's private (0700) directory, made on first use and removed when the job ends.

    A task that writes no files costs no directory: a mkdir and rmtree were a third of a no-op
    job's time. Named job-<id>-<host>-<pid>-<attempt>: unique per attempt; host and pid tell a
    later worker on the same host whether the owner is gone (remove_stale_work_dirs).
    """

    def __init__(self, root: Path, job: ClaimedJob) -> None:
        self.root, self.job = root, job
        self._made: Path | None = None
        self._lock = threading.Lock()  # a handler's threads may ask for it at once

    @property
    def name(self) -> str:
        return f"{WORK_DIR_PREFIX}{self.job.id}-{HOST}-{os.getpid()}-{self.job.attempts}"

    @property
    def path(self) -> Path:
        return self._made or self.root / self.name

    def make(self) -> Path:
        with self._lock:
            return self._make()

    def _make(self) -> Path:
        if self._made is None:
            path = self.root / self.name
            try:
                path.mkdir(mode=0o700)
            except FileNotFoundError:  # first job, or the temp root was cleaned away under us
                self.root.mkdir(parents=True, exist_ok=True)
                path.mkdir(mode=0o700)
            except FileExistsError:  # left by an earlier process with our (reused) pid
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir(mode=0o700)
            self._made = path
        return self._made

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._made is not None:
            shutil.rmtree(self._made, ignore_errors=True)


def remove_stale_work_dirs(root: Path) -> list[Path]:
    """Remove job directories left by worker processes of this host that no longer exist.

    Directories of other hosts (containers sharing WORKER_TEMP_DIR have their own hostnames and
    pid namespaces) are left alone: their pids mean nothing here.
    """
    removed = []
    for path in root.glob(f"{WORK_DIR_PREFIX}*") if root.is_dir() else []:
        pid = _owner_pid(path.name) if f"-{HOST}-" in path.name else None
        if pid is not None and not pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _owner_pid(name: str) -> int | None:
    # job-<uuid>-<host>-<pid>-<attempt>: uuid and host hold dashes, so count from the end.
    parts = name.split("-")
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None
