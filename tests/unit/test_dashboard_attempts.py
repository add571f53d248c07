"""The job page's attempts and stage times, built from crafted rows (worker.dashboard.attempts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from worker.dashboard.attempts import Attempt, attempts_of, duration
from worker.db.jobs import Job

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def at(seconds: float) -> str:
    return t(seconds).isoformat()


def stage(name: str, seconds: float, attempt: int, worker: str) -> dict[str, Any]:
    return {"stage": name, "at": at(seconds), "attempt": attempt, "worker": worker}


def job(**columns: Any) -> Job:
    row: dict[str, Any] = {
        "id": uuid4(), "user_id": None, "type": "video.process", "priority": 0, "payload": {}, "attempts": 1,
        "max_attempts": 3, "status": "pending", "result": None, "error": None, "errors": [], "progress": 0.0,
        "stage": None, "run_at": T0, "locked_by": None, "locked_until": None, "cancel_requested_at": None,
        "dedupe_key": None, "created_at": T0, "updated_at": T0, "started_at": None, "completed_at": None}
    return Job(**{**row, **columns})


def summary(attempts: list[Attempt]) -> list[tuple[int, str, datetime | None, datetime | None, str]]:
    return [(a.number, a.worker, a.started, a.ended, a.outcome) for a in attempts]


def stage_times(attempt: Attempt) -> list[tuple[str, float | None]]:
    return [(s.name, s.seconds) for s in attempt.stages]


def test_entries_from_before_the_history_still_list_with_the_worker_a_take_back_names() -> None:
    row = job(status="failed", attempts=2, started_at=t(0), completed_at=t(20), error="boom", errors=[
        {"attempt": 1, "at": at(10), "error": "worker lost (lease expired): host-1/0"},
        {"attempt": 2, "at": at(20), "error": "boom"}])
    attempts = attempts_of(row, t(30))
    assert summary(attempts) == [(1, "host-1/0", t(0), t(10), "worker lost (lease expired): host-1/0"),
                                 (2, "", None, t(20), "boom")]
    assert [a.stages for a in attempts] == [(), ()]


def test_a_take_back_ends_the_dead_workers_attempt_and_the_new_one_runs() -> None:
    row = job(status="processing", attempts=2, started_at=t(0), locked_by="b/0", stage="claimed",
              attempt_started_at=t(30), stage_history=[
                  stage("claimed", 0, 1, "a/0"), stage("processing", 2, 1, "a/0"), stage("claimed", 30, 2, "b/0")],
              errors=[{"attempt": 1, "at": at(30), "worker": "a/0", "started": at(0),
                       "error": "worker lost (lease expired): a/0"}])
    first, second = attempts_of(row, t(34))
    assert summary([first]) == [(1, "a/0", t(0), t(30), "worker lost (lease expired): a/0")]
    assert stage_times(first) == [("claimed", 2.0), ("processing", 28.0)]
    assert summary([second]) == [(2, "b/0", t(30), None, "running: claimed 0%")]
    assert stage_times(second) == [("claimed", 4.0)] and second.stages[0].running


def test_a_retried_then_completed_job_gives_each_attempt_its_worker_and_stages() -> None:
    row = job(status="completed", attempts=2, started_at=t(0), completed_at=t(50), attempt_started_at=t(20),
              stage_history=[stage("claimed", 0, 1, "a/0"), stage("processing", 1, 1, "a/0"),
                             stage("claimed", 20, 2, "b/1"), stage("processing", 21, 2, "b/1"),
                             stage("uploading", 45, 2, "b/1")],
              errors=[{"attempt": 1, "at": at(5), "worker": "a/0", "started": at(0), "error": "storage is down"}])
    first, second = attempts_of(row, t(99))
    assert summary([first, second]) == [(1, "a/0", t(0), t(5), "storage is down"), (2, "b/1", t(20), t(50), "completed")]
    assert stage_times(first) == [("claimed", 1.0), ("processing", 4.0)]
    assert stage_times(second) == [("claimed", 1.0), ("processing", 24.0), ("uploading", 5.0)]
    assert not any(s.running for s in second.stages)


def test_a_release_and_a_cancel_end_their_attempts_and_are_no_stages() -> None:
    row = job(status="cancelled", attempts=1, started_at=t(0), completed_at=t(9), error="cancelled by request",
              stage_history=[stage("claimed", 0, 1, "a/0"), stage("released", 3, 1, "a/0"),
                             stage("claimed", 5, 1, "b/0"), stage("processing", 6, 1, "b/0"),
                             stage("cancelled", 9, 1, "b/0")])
    first, second = attempts_of(row, t(99))
    assert summary([first, second]) == [(1, "a/0", t(0), t(3), "released (not counted)"),
                                        (1, "b/0", t(5), t(9), "cancelled by request")]
    assert stage_times(first) == [("claimed", 3.0)]
    assert stage_times(second) == [("claimed", 1.0), ("processing", 3.0)]


def test_an_operator_retry_counts_from_one_again_and_each_error_ends_its_own_run() -> None:
    row = job(status="processing", attempts=1, started_at=t(0), locked_by="b/0", stage="processing",
              stage_history=[stage("claimed", 0, 1, "a/0"), stage("claimed", 100, 1, "b/0"),
                             stage("processing", 101, 1, "b/0")],
              errors=[{"attempt": 1, "at": at(4), "worker": "a/0", "started": at(0), "error": "bad input"}])
    first, second = attempts_of(row, t(110))
    assert summary([first]) == [(1, "a/0", t(0), t(4), "bad input")]
    assert summary([second]) == [(1, "b/0", t(100), None, "running: processing 0%")]
    assert stage_times(second) == [("claimed", 1.0), ("processing", 9.0)]


def test_a_job_running_since_before_the_history_lists_its_lease_holder() -> None:
    row = job(status="processing", attempts=1, started_at=t(0), locked_by="a/0", stage="processing", progress=40.0)
    assert summary(attempts_of(row, t(9))) == [(1, "a/0", t(0), None, "running: processing 40%")]


def test_a_pending_job_never_run_has_no_attempts() -> None:
    assert attempts_of(job(attempts=0), t(1)) == []


def test_durations_are_short_and_readable() -> None:
    assert [duration(s) for s in (None, 0.42, 12.4, 210, 7200)] == ["", "0.4s", "12s", "3.5m", "2.0h"]


def test_an_attempt_whose_end_went_unrecorded_ends_where_the_next_begins() -> None:
    # A release by a worker older than the stage history: no 'released' entry, the number comes again.
    row = job(status="failed", attempts=1, started_at=t(0), completed_at=t(15), error="boom",
              stage_history=[stage("claimed", 0, 1, "a/0"), stage("claimed", 10, 1, "b/0")],
              errors=[{"attempt": 1, "at": at(15), "worker": "b/0", "started": at(10), "error": "boom"}])
    assert summary(attempts_of(row, t(99))) == [(1, "a/0", t(0), t(10), ""), (1, "b/0", t(10), t(15), "boom")]
