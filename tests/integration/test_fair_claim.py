"""Fair share between owners (issue 18): the claim order, through both claim statements.

CLAIM_JOB is a single slot's claim (`claim_next_job`), COMPLETE_AND_CLAIM a round for several
slots (`complete_and_claim` with more than one claimer, or with completions).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from worker.db import ClaimedJob, Completion, JobStore

A, B, C = (uuid.UUID(f"{n}0000000-0000-4000-8000-000000000000") for n in "abc")


@pytest.fixture
def store(db_url: str, db: psycopg.Connection[Any]) -> Iterator[JobStore]:
    db.execute("insert into auth.users (id, email) values (%s, 'a@x'), (%s, 'b@x'), (%s, 'c@x')", (A, B, C))
    s = JobStore(db_url, "test:fair", lease_seconds=30)
    yield s
    s.close()


def burst(store: JobStore, owner: UUID | None, count: int, job_type: str = "t.a", **kw: Any) -> list[UUID]:
    return [store.insert_job(job_type, {"n": n}, user_id=owner, **kw).id for n in range(count)]


def round_for(store: JobStore, slots: int, done: list[ClaimedJob] = (), **kw: Any) -> list[ClaimedJob]:  # type: ignore[assignment]
    """One COMPLETE_AND_CLAIM round: complete `done`, claim for `slots` slots; the claimed jobs in slot order."""
    names = [f"test:fair/{i}" for i in range(slots)]
    completions = [Completion(job.id, names[i], {}) for i, job in enumerate(done)]
    # A completing slot claims under its own name: lease `done` to the slots that complete them.
    claimed = store.complete_and_claim(completions, names, **kw)[1]
    return [claimed[name] for name in names if name in claimed]


def test_a_burst_does_not_starve_a_later_single_job(store: JobStore) -> None:
    """User A inserts 30 jobs, then user B inserts 1. With two slots, B's job starts before A's third."""
    a_jobs = burst(store, A, 30)
    (b_job,) = burst(store, B, 1)
    first = round_for(store, 2)
    assert [j.id for j in first] == [a_jobs[0], b_job]
    second = round_for(store, 2)
    assert [j.id for j in second] == a_jobs[1:3]


def test_single_claims_take_turns_between_owners(store: JobStore) -> None:
    a_jobs = burst(store, A, 5)
    b_jobs = burst(store, B, 2)
    c_jobs = burst(store, C, 1)
    starts = [job.id for job in iter(store.claim_next_job, None)]
    # A's first (oldest), then B and C with nothing running, then A and B (one running each), ...
    assert starts == [a_jobs[0], b_jobs[0], c_jobs[0], a_jobs[1], b_jobs[1], *a_jobs[2:]]


def test_the_owner_running_fewest_goes_first_then_the_oldest_job(store: JobStore, db: psycopg.Connection[Any]) -> None:
    older_b = burst(store, B, 1)
    newer_a = burst(store, A, 1)
    # B has a job running already: A's newer job goes first.
    db.execute("update public.media_jobs set status = 'processing', locked_by = 'other:1:x', "
               "locked_until = now() + interval '1 minute' where id = %s", (burst(store, B, 1)[0],))
    assert [j.id for j in round_for(store, 2)] == [newer_a[0], older_b[0]]


def test_priority_wins_over_fairness(store: JobStore) -> None:
    """A high-priority job of A runs before a normal job of B, though A has a job running already."""
    burst(store, A, 1)
    assert store.claim_next_job() is not None  # A: one running
    (b_normal,) = burst(store, B, 1)
    (a_high,) = burst(store, A, 1, priority=10)
    assert [j.id for j in round_for(store, 1)] == [a_high]
    assert store.claim_next_job().id == b_normal  # type: ignore[union-attr]


def test_one_owners_jobs_keep_their_order(store: JobStore) -> None:
    now = datetime.now(UTC)
    low = store.insert_job("t.a", {}, user_id=A, priority=-10).id
    late = store.insert_job("t.a", {}, user_id=A, run_at=now - timedelta(seconds=1)).id
    early = store.insert_job("t.a", {}, user_id=A, run_at=now - timedelta(seconds=5)).id
    high = store.insert_job("t.a", {}, user_id=A, priority=10).id
    store.insert_job("t.a", {}, user_id=A, priority=100, run_at=now + timedelta(hours=1))  # not due
    assert [j.id for j in round_for(store, 2)] == [high, early]
    assert [j.id for j in round_for(store, 3)] == [late, low]


def test_jobs_without_an_owner_are_one_group(store: JobStore) -> None:
    anonymous = burst(store, None, 3)
    (a_job,) = burst(store, A, 1)
    assert [j.id for j in round_for(store, 3)] == [anonymous[0], a_job, anonymous[1]]


def test_a_worker_with_job_types_claims_only_those_fairly(store: JobStore) -> None:
    burst(store, A, 3, "t.other")  # older, but not this worker's type
    a_jobs = burst(store, A, 3, "t.mine")
    (b_job,) = burst(store, B, 1, "t.mine")
    claimed = round_for(store, 2, types=("t.mine",))
    assert [j.id for j in claimed] == [a_jobs[0], b_job]
    assert store.claim_next_job(("t.mine",)).id == a_jobs[1]  # type: ignore[union-attr]


def test_owners_whose_jobs_all_failed_do_not_block_the_others(store: JobStore) -> None:
    for job_id in burst(store, A, 3):
        claimed = store.claim_next_job()
        assert claimed is not None and claimed.id == job_id
        store.fail_job(job_id, "bad input")
    burst(store, A, 2, run_at=datetime.now(UTC) + timedelta(hours=1))  # A's only other jobs: not due
    (b_job,) = burst(store, B, 1)
    assert [j.id for j in round_for(store, 2)] == [b_job]


def test_a_completing_round_counts_its_completions_as_ended(store: JobStore) -> None:
    """A slot finishing A's only running job may start A's next one in the same round, under a cap of 1."""
    a_jobs = burst(store, A, 2)
    (first,) = round_for(store, 1, max_running_per_user=1)
    assert first.id == a_jobs[0]
    assert [j.id for j in round_for(store, 1, done=[first], max_running_per_user=1)] == [a_jobs[1]]
