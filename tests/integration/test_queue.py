"""Claiming: order, due time, type filter, and no double claims under concurrency."""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from worker.db import ClaimedJob, Completion, JobStore
from worker.db.listener import JobNotifications
from worker.errors import LeaseLost

_open: list[JobStore] = []


def store(db_url: str, name: str = "w1") -> JobStore:
    s = JobStore(db_url, f"test:{name}", lease_seconds=30)
    _open.append(s)
    return s


def complete_and_claim_next(s: JobStore, job_id: UUID, result: dict[str, Any],
                            types: tuple[str, ...] = ()) -> ClaimedJob | None:
    """One slot's queue round: complete its job and claim its next one."""
    done, claimed = s.complete_and_claim([Completion(job_id, s.worker_id, result)], [s.worker_id], types)
    if job_id not in done:
        raise LeaseLost("lost")
    return claimed.get(s.worker_id)


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def test_claim_order_is_priority_then_run_at_then_created_at(db_url: str) -> None:
    s = store(db_url)
    now = datetime.now(UTC)
    low = s.insert_job("t.a", {"n": "low"}, priority=-10)
    normal_late = s.insert_job("t.a", {"n": "normal_late"}, run_at=now - timedelta(seconds=1))
    normal_early = s.insert_job("t.a", {"n": "normal_early"}, run_at=now - timedelta(seconds=5))
    high = s.insert_job("t.a", {"n": "high"}, priority=10)
    future = s.insert_job("t.a", {"n": "future"}, priority=100, run_at=now + timedelta(hours=1))
    claimed = [s.claim_next_job() for _ in range(5)]
    assert [j.id if j else None for j in claimed] == [high.id, normal_early.id, normal_late.id, low.id, None]
    not_due = s.get_job(future.id)  # the row, not what the insert returned
    assert not_due is not None and not_due.status == "pending" and not_due.attempts == 0 and not_due.locked_by is None


def test_claim_sets_lease_and_counts_the_attempt(db_url: str) -> None:
    s = store(db_url)
    s.insert_job("t.a", {})
    claimed = s.claim_next_job()
    assert claimed is not None and claimed.attempts == 1
    job = s.get_job(claimed.id)
    assert job is not None
    assert job.status == "processing" and job.attempts == 1 and job.locked_by == "test:w1"
    assert job.locked_until is not None and job.started_at is not None
    assert job.locked_until > datetime.now(UTC) + timedelta(seconds=20)


def test_claim_respects_job_types(db_url: str) -> None:
    s = store(db_url)
    s.insert_job("video.process", {})
    wanted = s.insert_job("media.probe", {})
    job = s.claim_next_job(("media.probe",))
    assert job is not None and job.id == wanted.id
    assert s.claim_next_job(("media.probe",)) is None


def test_complete_and_fail_write_only_with_our_lease(db_url: str) -> None:
    s, other = store(db_url), store(db_url, "w2")
    s.insert_job("t.a", {})
    s.insert_job("t.a", {})
    first, second = s.claim_next_job(), s.claim_next_job()
    assert first and second
    assert s.complete_and_claim([Completion(first.id, s.worker_id, {"outputs": []})], []) == ({first.id}, {})
    s.fail_job(second.id, "bad input: fix it")
    done, failed = s.get_job(first.id), s.get_job(second.id)
    assert done and done.status == "completed" and done.progress == 100 and done.completed_at
    assert failed and failed.status == "failed" and failed.error == "bad input: fix it"
    assert failed.errors[-1]["error"] == "bad input: fix it"
    with pytest.raises(LeaseLost):
        other.fail_job(second.id, "not ours")
    assert other.complete_and_claim([Completion(first.id, other.worker_id, {})], []) == (set(), {})


def test_concurrent_claimers_never_share_a_job(db_url: str) -> None:
    jobs = 400
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into public.media_jobs (type, payload) "
                     "select 't.noop', jsonb_build_object('n', g) from generate_series(1, %s) g", (jobs,))
    claimed: list[str] = []
    lock = threading.Lock()

    def claimer(index: int) -> None:
        s = store(db_url, f"w{index}")
        while (job := s.claim_next_job()) is not None:
            with lock:
                claimed.append(str(job.id))
            s.complete_and_claim([Completion(job.id, s.worker_id, {})], [])
        s.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == jobs
    assert len(set(claimed)) == jobs
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from public.media_jobs where status='completed' and attempts=1"
                            ).fetchone() == (jobs,)


def test_complete_and_claim_next_chains_in_order_and_stops_when_empty(db_url: str) -> None:
    s = store(db_url)
    first = s.insert_job("t.a", {"n": 1}, priority=5)
    second = s.insert_job("t.a", {"n": 2})
    s.insert_job("t.other", {"n": 3})
    job = s.claim_next_job(("t.a",))
    assert job is not None and job.id == first.id
    chained = complete_and_claim_next(s, job.id, {"outputs": []}, ("t.a",))
    assert chained is not None and chained.id == second.id and chained.attempts == 1
    leased = s.get_job(chained.id)
    assert leased is not None and leased.status == "processing" and leased.locked_by == "test:w1"
    done = s.get_job(first.id)
    assert done is not None and done.status == "completed" and done.result == {"outputs": []}
    assert complete_and_claim_next(s, chained.id, {}, ("t.a",)) is None  # only t.other is left
    remaining = s.get_job(second.id)
    assert remaining is not None and remaining.status == "completed"


def test_complete_and_claim_next_claims_nothing_without_our_lease(db_url: str) -> None:
    s, other = store(db_url), store(db_url, "w2")
    s.insert_job("t.a", {})
    waiting = s.insert_job("t.a", {})
    job = s.claim_next_job()
    assert job is not None
    with pytest.raises(LeaseLost):
        complete_and_claim_next(other, job.id, {})
    still = s.get_job(waiting.id)
    assert still is not None and still.status == "pending"  # the failed completion claimed nothing
    mine = s.get_job(job.id)
    assert mine is not None and mine.status == "processing"


def test_complete_and_claim_next_never_takes_back_the_job_it_completes(db_url: str) -> None:
    s = store(db_url)
    s.insert_job("t.a", {})
    job = s.claim_next_job()
    assert job is not None
    with psycopg.connect(db_url, autocommit=True) as conn:  # our lease ran out, but nobody took the job
        conn.execute("update public.media_jobs set locked_until = now() - interval '1 second' where id = %s",
                     (job.id,))
    assert complete_and_claim_next(s, job.id, {}) is None
    done = s.get_job(job.id)
    assert done is not None and done.status == "completed" and done.attempts == 1


def test_release_unknown_claims_gives_back_all_but_the_running_job(db_url: str) -> None:
    s = store(db_url)
    for n in range(3):
        s.insert_job("t.a", {"n": n})
    running, orphan_a, orphan_b = s.claim_next_job(), s.claim_next_job(), s.claim_next_job()
    assert running and orphan_a and orphan_b
    assert s.release_unknown_claims(keep=[running.id]) == 2
    for orphan in (orphan_a, orphan_b):
        row = s.get_job(orphan.id)
        assert row is not None and row.status == "pending" and row.attempts == 0 and row.locked_by is None
    row = s.get_job(running.id)
    assert row is not None and row.status == "processing" and row.locked_by == "test:w1"


def test_only_the_claim_commits_asynchronously(db_url: str) -> None:
    s = store(db_url)
    s.insert_job("t.a", {})
    job = s.claim_next_job()
    assert job is not None
    # set_config(..., true) lasts for the claim's own transaction: the completion that follows
    # on the same connection must still wait for the WAL flush.
    assert s._execute("show synchronous_commit", {}) == [{"synchronous_commit": "on"}]
    s.complete_and_claim([Completion(job.id, s.worker_id, {})], [])
    done = s.get_job(job.id)
    assert done is not None and done.status == "completed"


def test_notifications_wake_a_worker_only_for_its_job_types(db_url: str) -> None:
    notifications = JobNotifications(db_url, ("test.mine",))
    s = store(db_url)
    try:
        assert notifications.read() is True  # connecting: anything sent before may be missed, so look
        for job_type, expected in (("test.other", False), ("test.mine", True)):
            s.insert_job(job_type, {})
            fileno = notifications.fileno()
            assert fileno is not None and select.select([fileno], [], [], 5)[0], "no notification came"
            assert notifications.read() is expected, job_type
    finally:
        notifications.close()
        s.close()
