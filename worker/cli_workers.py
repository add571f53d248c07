"""The fleet on the command line: `workers`, the live workers in `status`, and the hint that
`enqueue --wait` gives when no live worker takes the job's type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from worker.config import Settings
from worker.db import WorkerRow, WorkerStore
from worker.presence import live_job_types, live_seconds
from worker.process_identity import Liveness, liveness, this_process, workers_by_type

START_HINT = "start one with `python worker.py`"


def add_workers_parser(sub: Any) -> None:
    sub.add_parser("workers", help="live and stale workers: id, host, age, last seen, concurrency, job types, "
                                   "ffmpeg path, state and the jobs each holds")


def format_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def presence_state(state: str, seen_seconds_ago: float, live_window: float, process: Liveness) -> str:
    """What `workers` shows for a row: its state while live, else why it is stale."""
    if process is Liveness.ENDED:
        return "stale (process ended)"
    if seen_seconds_ago > live_window:
        return f"stale (not seen for {format_age(seen_seconds_ago)})"
    return state


def print_workers(store: WorkerStore, settings: Settings) -> int:
    """`python worker.py workers`."""
    rows = store.list_workers()
    if not rows:
        print(f"no workers: {START_HINT}")
        return 0
    window = live_seconds(settings.worker_heartbeat_seconds, settings.worker_lease_seconds)
    here = this_process()
    print(f"{'worker':<34} {'host':<16} {'age':>6} {'seen':>6} {'conc':>4} {'ffmpeg':<7} {'job types':<24} state")
    for row in rows:
        print(_worker_line(row, presence_state(row.state, row.seen_seconds_ago, window, liveness(row.identity, here))))
        for job in row.jobs:
            print(f"    {job['id']}  {job['type']:<18} {float(job['progress']):5.1f}% {job['stage'] or ''}")
    return 0


def _worker_line(row: WorkerRow, state: str) -> str:
    types = ",".join(row.job_types) or "all"
    return (f"{row.id:<34} {row.identity.host:<16} {format_age(row.age_seconds):>6} "
            f"{format_age(row.seen_seconds_ago) + ' ago':>6} {row.concurrency:>4} {row.ffmpeg_path or '?':<7} "
            f"{types:<24} {state}, {len(row.jobs)} job(s)")


def print_live_workers(store: WorkerStore, settings: Settings, types: Iterable[str]) -> None:
    """`status`: how many live workers take each job type."""
    window = live_seconds(settings.worker_heartbeat_seconds, settings.worker_lease_seconds)
    lists = live_job_types(store, window)
    counts = workers_by_type(lists, types)
    every = counts.pop("*")
    print(f"\nlive workers: {len(lists)}" + (f" ({every} take every type)" if every else ""))
    for job_type, count in counts.items():
        print(f"  {job_type:<24} {count} live worker(s)" + ("" if count else f": {START_HINT}"))


def no_live_worker_hint(store: WorkerStore, settings: Settings, job_type: str) -> str | None:
    """A line for `enqueue --wait` when no live worker takes `job_type`, else None."""
    window = live_seconds(settings.worker_heartbeat_seconds, settings.worker_lease_seconds)
    lists = live_job_types(store, window)
    if workers_by_type(lists, [job_type])[job_type]:
        return None
    others = f" (the {len(lists)} live worker(s) take other types: see WORKER_JOB_TYPES)" if lists else ""
    return f"no live worker takes {job_type}: {START_HINT}{others}"
