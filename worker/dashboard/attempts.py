"""A job's attempts and the time spent in each stage, as the job page lists them, from the row alone.

Two histories record them (migration 20261201140000_job_attempt_history.sql). `stage_history` has
one entry per stage an attempt entered, the claim's 'claimed' first, each with the attempt's number
and worker; 'released' and 'cancelled' entries end an attempt. `errors` has one entry per attempt
that failed or was taken back: its number, end, error and (since that migration) worker and start.
An attempt is a run of stage entries from a 'claimed' one, ended by its errors entry, its end
entry, the row's completed_at, or still running. Entries older than that migration have no stages
and no start; they still list, with the worker a take-back message names. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from worker.dashboard.views import age
from worker.db.jobs import Job

# Stage entries that end an attempt without an errors entry: a release (not counted) and a cancel.
ENDINGS = {"released": "released (not counted)", "cancelled": "cancelled by request"}
FINISHED = ("completed", "failed", "cancelled")
LAST = datetime.max.replace(tzinfo=UTC)  # sorts an attempt with no time at all after the others


@dataclass(frozen=True)
class Stage:
    """One stage of an attempt: when it began and how long it lasted (None: its end is unknown)."""

    name: str
    started: datetime | None
    seconds: float | None
    running: bool = False


@dataclass(frozen=True)
class Attempt:
    """One attempt of a job as its page lists it."""

    number: int
    worker: str
    started: datetime | None
    ended: datetime | None
    outcome: str
    stages: tuple[Stage, ...] = ()


@dataclass
class _Run:
    """The stage entries of one attempt, from its 'claimed' entry."""

    number: int
    worker: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started(self) -> datetime | None:
        return when(self.entries[0].get("at"))

    @property
    def ending(self) -> dict[str, Any] | None:
        return next((e for e in self.entries if e.get("stage") in ENDINGS), None)


def attempts_of(job: Job, now: datetime) -> list[Attempt]:
    """Every attempt of the job, oldest first, each with its worker, start, end, outcome and stages;
    `now` ends the stage a running attempt is in."""
    runs = _runs(job.stage_history)
    ends = [e for e in job.errors if isinstance(e, dict)]
    matched = _match(runs, ends)
    listed = [_from_error(e) for i, e in enumerate(ends) if i not in matched.values()]
    for index, run in enumerate(runs):
        later = runs[index + 1].started if index + 1 < len(runs) else None
        error = ends[matched[index]] if index in matched else None
        listed.append(_from_run(job, run, error, later, now))
    if not runs:  # no stage recorded (claimed before the history existed): the row's own attempt
        listed.extend(_from_row(job))
    listed.sort(key=lambda a: a.started or a.ended or LAST)
    if listed and listed[0].started is None and job.started_at:  # the first start is the row's started_at
        listed[0] = replace(listed[0], started=job.started_at)
    return listed


def _runs(history: list[Any]) -> list[_Run]:
    """stage_history split into attempts: a 'claimed' entry (or a new attempt number) starts one."""
    runs: list[_Run] = []
    for entry in history:
        if not isinstance(entry, dict):
            continue
        number = int(entry.get("attempt") or 0)
        if not runs or entry.get("stage") == "claimed" or number != runs[-1].number:
            runs.append(_Run(number, str(entry.get("worker") or "")))
        runs[-1].entries.append(entry)
    return runs


def _match(runs: list[_Run], ends: list[dict[str, Any]]) -> dict[int, int]:
    """{run index: errors index}: each errors entry ends the latest run of its number that began
    before it (a retried job counts its attempts from 1 again) and has no end entry of its own."""
    matched: dict[int, int] = {}
    for i, entry in enumerate(ends):
        at = when(entry.get("at"))
        candidates = [r for r, run in enumerate(runs)
                      if r not in matched and run.ending is None and run.number == int(entry.get("attempt") or 0)
                      and (at is None or run.started is None or run.started <= at)]
        if candidates:
            matched[candidates[-1]] = i
    return matched


def _from_error(entry: dict[str, Any]) -> Attempt:
    error = str(entry.get("error", ""))
    return Attempt(int(entry.get("attempt") or 0), str(entry.get("worker") or worker_named(error)),
                   when(entry.get("started")), when(entry.get("at")), error)


def _from_run(job: Job, run: _Run, error: dict[str, Any] | None, later: datetime | None, now: datetime) -> Attempt:
    """One recorded attempt; its end is its errors entry, its end entry, the row's or the next start."""
    is_last = later is None
    ending = run.ending
    if error is not None:
        ended, outcome = when(error.get("at")), str(error.get("error", ""))
    elif ending is not None:
        ended, outcome = when(ending.get("at")), ENDINGS[str(ending.get("stage"))]
    elif is_last and job.status == "processing":
        ended, outcome = None, _running(job)
    elif is_last and job.status in FINISHED:
        ended, outcome = job.completed_at, job.error or job.status
    else:
        ended, outcome = later, ""
    running = ended is None and is_last and job.status == "processing"
    stages = _stages(run, ended or (now if running else None), running)
    worker = (run.worker or job.locked_by or "") if running else run.worker
    return Attempt(run.number, worker, run.started, ended, outcome, stages)


def _stages(run: _Run, end: datetime | None, running: bool) -> tuple[Stage, ...]:
    """Each stage lasts until the attempt's next entry, or the attempt's end (an end entry is no stage)."""
    ending = run.ending
    entries = run.entries if ending is None else run.entries[:run.entries.index(ending)]
    stages = []
    for index, entry in enumerate(entries):
        started = when(entry.get("at"))
        is_last = index + 1 == len(entries)
        until = end if is_last else when(entries[index + 1].get("at"))
        seconds = (until - started).total_seconds() if started and until else None
        stages.append(Stage(str(entry.get("stage", "")), started, seconds, running and is_last))
    return tuple(stages)


def _from_row(job: Job) -> list[Attempt]:
    """The row's attempt when stage_history has none of it."""
    if job.status == "processing":
        return [Attempt(job.attempts, job.locked_by or "", job.attempt_started_at, None,
                        _running(job))]
    if job.status in ("completed", "cancelled") and job.attempts:
        return [Attempt(job.attempts, "", job.attempt_started_at, job.completed_at, job.error or job.status)]
    return []


def _running(job: Job) -> str:
    return f"running: {job.stage or ''} {job.progress:.0f}%"


def worker_named(error: str) -> str:
    """The worker a take-back message names ('worker lost ...: <worker>')."""
    return error.rsplit(": ", 1)[-1] if error.startswith("worker lost") and ": " in error else ""


def when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def duration(seconds: float | None) -> str:
    """A stage's length: 0.4s, 12s, 3.5m."""
    if seconds is None:
        return ""
    return f"{max(seconds, 0):.1f}s" if seconds < 10 else age(seconds)
