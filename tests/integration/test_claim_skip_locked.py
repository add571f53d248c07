"""A claim passes over a job another transaction holds locked (SKIP LOCKED) instead of queueing on it.

The concurrent-claim test in test_queue.py stays correct when claimers wait for each other's row
locks, so it cannot tell SKIP LOCKED from a plain FOR UPDATE. Here a transaction holds the first
choice locked while a claim runs. The claiming connection has a lock_timeout, so a claim that waits
for the lock fails with an error instead of hanging: nothing here measures time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

import psycopg
import pytest

from worker.db import ClaimedJob, JobStore
from worker.errors import DatabaseUnavailable


def with_lock_timeout(url: str) -> str:
    """The URL with libpq options that make a statement waiting for a row lock fail (after 5 s).
    `--name=value`, not `-c name=value`: worker.db.connection.libpq_url re-encodes a space as '+'."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("options", "--lock_timeout=5000")]
    return urlunsplit(parts._replace(query=urlencode(query)))


class RowLocker:
    """Another transaction, left open, holding row locks as a claim in flight does."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)  # not autocommit: the locks last until release()

    def lock(self, job_id: UUID) -> None:
        self.conn.execute("select id from public.media_jobs where id = %s for update", (job_id,))

    def release(self) -> None:
        self.conn.rollback()


@pytest.fixture
def locker(db_url: str) -> Iterator[RowLocker]:
    locker = RowLocker(db_url)
    yield locker
    locker.conn.close()


@pytest.fixture
def store(db_url: str) -> Iterator[JobStore]:
    s = JobStore(with_lock_timeout(db_url), "test:claimer", lease_seconds=30)
    yield s
    s.close()


def three_jobs(store: JobStore, db: psycopg.Connection[Any], first_is: str) -> tuple[UUID, UUID, UUID]:
    """The first choice of any claim (`pending`, or `expired`: a dead worker's lease), then two pending jobs."""
    first = store.insert_job("t.a", {"n": 1}, priority=10).id
    second = store.insert_job("t.a", {"n": 2}, priority=5).id
    third = store.insert_job("t.a", {"n": 3}).id
    if first_is == "expired":
        db.execute("update public.media_jobs set status = 'processing', attempts = 1, locked_by = 'dead:1:x', "
                   "locked_until = now() - interval '1 minute' where id = %s", (first,))
    return first, second, third


def claim(store: JobStore, slots: list[str]) -> dict[str, ClaimedJob]:
    """One claim round for these slots; fail the test if it queued on the locked row."""
    try:
        if slots == [store.worker_id]:
            job = store.claim_next_job()
            return {store.worker_id: job} if job else {}
        return store.complete_and_claim([], slots)[1]
    except DatabaseUnavailable as exc:
        pytest.fail(f"the claim waited for the row another transaction holds locked instead of skipping it: {exc}")


@pytest.mark.parametrize("first_is", ["pending", "expired"])
def test_a_single_claim_skips_the_locked_first_choice(store: JobStore, locker: RowLocker,
                                                      db: psycopg.Connection[Any], first_is: str) -> None:
    first, second, _ = three_jobs(store, db, first_is)
    locker.lock(first)
    claimed = claim(store, [store.worker_id])
    assert [job.id for job in claimed.values()] == [second]
    untouched = store.get_job(first)
    assert untouched is not None and untouched.locked_by == (None if first_is == "pending" else "dead:1:x")
    locker.release()
    claimed = claim(store, [store.worker_id])  # the lock was all that kept it from being claimed
    assert [job.id for job in claimed.values()] == [first]


@pytest.mark.parametrize("first_is", ["pending", "expired"])
def test_a_batched_claim_skips_the_locked_first_choice(store: JobStore, locker: RowLocker,
                                                       db: psycopg.Connection[Any], first_is: str) -> None:
    first, second, third = three_jobs(store, db, first_is)
    locker.lock(first)
    claimed = claim(store, ["test:slot-a", "test:slot-b"])
    assert sorted(claimed) == ["test:slot-a", "test:slot-b"]
    assert {job.id for job in claimed.values()} == {second, third}
    for job in claimed.values():
        row = store.get_job(job.id)
        assert row is not None and row.status == "processing" and row.attempts == 1
    locker.release()
    assert [job.id for job in claim(store, ["test:slot-c", "test:slot-d"]).values()] == [first]
