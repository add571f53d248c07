"""The attempt history the dashboard's job page reads: stage_history entries from the heartbeat's
renewal (only when the stage changes) and the worker and start of each attempt in `errors`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from worker.db import JobStore
from worker.db.workers import WorkerStore

_open: list[JobStore] = []


def store(db_url: str, name: str) -> JobStore:
    s = JobStore(db_url, f"test:{name}", lease_seconds=30)
    _open.append(s)
    return s


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def stages(s: JobStore, job_id: UUID) -> list[tuple[str, int, str]]:
    job = s.get_job(job_id)
    assert job is not None
    return [(e["stage"], e["attempt"], e["worker"]) for e in job.stage_history]


def claimed_at(s: JobStore, job_id: UUID) -> datetime:
    job = s.get_job(job_id)
    assert job is not None and job.attempt_started_at is not None
    return job.attempt_started_at


def started(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["started"])


def test_renewals_append_a_stage_only_when_it_changes(db_url: str) -> None:
    s = store(db_url, "w1")
    job_id = s.insert_job("t.a", {}).id
    assert s.claim_next_job() is not None
    for stage in ("claimed", "downloading", "downloading", "processing", "processing", "processing"):
        s.renew_lease(job_id, 10, stage)
    assert stages(s, job_id) == [("claimed", 1, "test:w1"), ("downloading", 1, "test:w1"),
                                 ("processing", 1, "test:w1")]
    job = s.get_job(job_id)
    assert job is not None
    times = [datetime.fromisoformat(e["at"]) for e in job.stage_history]
    assert times == sorted(times) and times[0] == job.attempt_started_at


def test_the_stage_history_stops_growing_at_200_entries(db_url: str) -> None:
    s = store(db_url, "w1")
    job_id = s.insert_job("t.a", {}).id
    assert s.claim_next_job() is not None
    for n in range(250):  # a custom handler naming a new stage for every step
        s.renew_lease(job_id, 10, f"step {n}")
    history = stages(s, job_id)
    assert len(history) == 200 and history[-1][0] == "step 198"
    job = s.get_job(job_id)
    assert job is not None and job.stage == "step 249"  # the row still says where the job is


def test_failures_record_the_attempts_worker_and_start(db_url: str) -> None:
    first, second = store(db_url, "w1"), store(db_url, "w2")
    job_id = first.insert_job("t.a", {}, max_attempts=3).id
    assert first.claim_next_job() is not None
    first_start = claimed_at(first, job_id)
    assert first.retry_or_fail_job(job_id, "storage is down", 0) == "pending"
    assert second.claim_next_job() is not None
    second_start = claimed_at(second, job_id)
    assert second.fail_job(job_id, "bad input") == "failed"
    job = second.get_job(job_id)
    assert job is not None
    assert [(e["attempt"], e["worker"], started(e), e["error"]) for e in job.errors] == [
        (1, "test:w1", first_start, "storage is down"), (2, "test:w2", second_start, "bad input")]
    assert second_start > first_start


def test_a_same_host_take_back_records_the_dead_workers_attempt(db_url: str) -> None:
    dead = store(db_url, "dead")
    job_id = dead.insert_job("t.a", {}).id
    assert dead.complete_and_claim((), ["dead-worker/0"])[1]
    start = claimed_at(dead, job_id)
    taker = WorkerStore(db_url, "taker", 30)
    _open.append(taker)
    assert [t.id for t in taker.take_back_jobs_of(["dead-worker"])] == [job_id]
    job = dead.get_job(job_id)
    assert job is not None
    [entry] = job.errors
    assert (entry["attempt"], entry["worker"], started(entry)) == (1, "dead-worker/0", start)


def test_a_release_and_a_cancel_end_their_attempt_in_the_stage_history(db_url: str) -> None:
    s = store(db_url, "w1")
    job_id = s.insert_job("t.a", {}).id
    assert s.claim_next_job() is not None
    assert s.release_job(job_id) == "pending"
    assert s.claim_next_job() is not None
    s.renew_lease(job_id, 50, "processing")
    assert s.request_cancel(job_id) == "processing"
    assert s.cancel_running_job(job_id) == "cancelled"
    assert stages(s, job_id) == [("claimed", 1, "test:w1"), ("released", 1, "test:w1"), ("claimed", 1, "test:w1"),
                                 ("processing", 1, "test:w1"), ("cancelled", 1, "test:w1")]
