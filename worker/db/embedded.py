"""The embedded PostgreSQL used when DATABASE_URL is unset (DESIGN.md §7).

pgserver keeps a list of the processes using a server (`.handle_pids.json`) and stops the server
when the last one exits cleanly. A process killed with SIGKILL never takes itself off that list,
so the server would run on forever. Here, dead processes are taken off the list whenever a
process joins or leaves, and a small reaper process stops the server once every process on the
list is gone, however they ended.
"""

from __future__ import annotations

import atexit
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

from worker.process_identity import pid_exists

HANDLE_LIST = ".handle_pids.json"
REAPER_PID_FILE = ".media-worker-reaper.pid"
REAPER_POLL_SECONDS = 2.0


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the PostgreSQL under data_dir/postgres; return its URL.

    Data persists across restarts. The server stops when the last process using it exits,
    cleanly or not (see the module docstring)."""
    pgserver = _import_pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "postgres"
    forget_dead_users(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    # atexit runs last-registered first: ours, before pgserver's own clean-up counts the users.
    atexit.register(forget_dead_users, pgdata)
    _ensure_reaper(pgdata, server.system_user)
    url: str = server.get_uri()
    return url


def embedded_database_exists(data_dir: Path) -> bool:
    """Whether an embedded database was ever created under data_dir (without starting one)."""
    return (data_dir / "postgres" / "PG_VERSION").is_file()


def _import_pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal on servers.
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def forget_dead_users(pgdata: Path) -> list[int]:
    """Take processes that no longer exist off the server's list of users; return those left."""
    with _import_pgserver().PostgresServer._lock:
        return _prune(pgdata / HANDLE_LIST)


def _prune(handles: Path) -> list[int]:
    """Call with pgserver's lock held."""
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return []
    alive = [pid for pid in pids if pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))
    return alive


def _ensure_reaper(pgdata: Path, system_user: str | None) -> None:
    """One reaper per server: fork one unless a live one is already watching it."""
    pid_file = pgdata / REAPER_PID_FILE
    try:
        if pid_exists(int(pid_file.read_text())):
            return
    except (OSError, ValueError):
        pass
    # Outside pgserver's lock: a child must not inherit it held. Two processes starting at once
    # may fork two reapers, which is harmless.
    child = os.fork()
    if child:
        pid_file.write_text(str(child))
        return
    _run_reaper(pgdata, system_user)  # the child: never returns


def _run_reaper(pgdata: Path, system_user: str | None) -> None:
    """In a process of its own (detached, no inherited files): stop the server once no user is left."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, 1024)  # a pipe a parent's caller waits on must not stay open here
    pgserver = _import_pgserver()
    try:
        while True:
            time.sleep(REAPER_POLL_SECONDS)
            with pgserver.PostgresServer._lock:
                if _prune(pgdata / HANDLE_LIST):
                    continue
                if (pgdata / "postmaster.pid").exists():
                    pgserver.pg_ctl(["-w", "stop"], pgdata=pgdata, user=system_user)
                (pgdata / REAPER_PID_FILE).unlink(missing_ok=True)
                break
    finally:
        os._exit(0)
