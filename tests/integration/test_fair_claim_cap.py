"""The per-owner cap (WORKER_MAX_RUNNING_PER_USER, issue 18): enforced by the claim statements
themselves, under concurrency, through a real worker, and reported by `status`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.workers import run_cli, start_worker, wait_for_status, worker_env
from worker.config import load_settings
from worker.db import ClaimedJob, Completion, JobStore
from worker.errors import ConfigError

A, B, C = (uuid.UUID(f"{n}0000000-0000-4000-8000-000000000000") for n in "abc")
CLAIMERS = 16
WAITING = "waiting for owner cap"


@pytest.fixture
def owners(db: psycopg.Connection[Any]) -> None:
    db.execute("insert into auth.users (id, email) values (%s, 'a@x'), (%s, 'b@x'), (%s, 'c@x')", (A, B, C))


@pytest.fixture
def store(db_url: str, owners: None) -> Iterator[JobStore]:
    s = JobStore(db_url, "test:cap", lease_seconds=30)
    yield s
    s.close()


def running_by_owner(db: psycopg.Connection[Any]) -> dict[Any, int]:
    rows = db.execute("select user_id, count(*) from public.media_jobs where status = 'processing' "
                      "group by user_id").fetchall()
    return {row["user_id"]: row["count"] for row in rows}


def test_four_slots_under_a_cap_of_one(store: JobStore, db: psycopg.Connection[Any]) -> None:
    """Never more than one of A's jobs at once, while B's and C's run beside it; A's next job says why."""
    a_jobs = [store.insert_job("t.a", {}, user_id=A).id for _ in range(4)]
    b_jobs = [store.insert_job("t.a", {}, user_id=B).id for _ in range(2)]
    (c_job,) = [store.insert_job("t.a", {}, user_id=C).id]
    slots = [f"test:cap/{i}" for i in range(4)]
    claimed = store.complete_and_claim([], slots, max_running_per_user=1)[1]
    assert sorted(j.id for j in claimed.values()) == sorted([a_jobs[0], b_jobs[0], c_job])
    assert running_by_owner(db) == {A: 1, B: 1, C: 1}
    held = store.get_job(a_jobs[1])
    assert held is not None and held.status == "pending" and held.stage == WAITING
    assert store.claim_next_job(max_running_per_user=1) is None  # one slot alone: no more either
    # A's job ends: the same round starts A's next one, never two.
    a_slot = next(slot for slot, job in claimed.items() if job.id == a_jobs[0])
    done, more = store.complete_and_claim([Completion(a_jobs[0], a_slot, {})], [a_slot, "test:cap/9"],
                                          max_running_per_user=1)
    assert done == {a_jobs[0]} and [j.id for j in more.values()] == [a_jobs[1]]
    assert running_by_owner(db) == {A: 1, B: 1, C: 1}
    started = store.get_job(a_jobs[1])
    assert started is not None and started.stage == "claimed"


def claim_at_once(db_url: str, cap: int) -> list[ClaimedJob]:
    """CLAIMERS stores released together: half claiming one slot (CLAIM_JOB), half two (COMPLETE_AND_CLAIM);
    half taking type t.a, half t.b (workers with different WORKER_JOB_TYPES see different next jobs)."""
    stores = [JobStore(db_url, f"test:c{i}", lease_seconds=30) for i in range(CLAIMERS)]
    for s in stores:
        s.get_job(uuid.uuid4())  # connect before the start line
    start, results, lock = threading.Barrier(CLAIMERS), [], threading.Lock()

    def claim(i: int, s: JobStore) -> None:
        start.wait()
        slots = [s.worker_id] if i % 2 else [f"{s.worker_id}/0", f"{s.worker_id}/1"]
        types = ("t.a",) if i % 4 < 2 else ("t.b",)
        jobs = list(s.complete_and_claim([], slots, types, max_running_per_user=cap)[1].values())
        with lock:
            results.extend(jobs)

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    return results


def test_many_concurrent_claimers_never_exceed_a_cap_of_one(db_url: str, store: JobStore,
                                                            db: psycopg.Connection[Any]) -> None:
    for owner in (A, B, None):
        for n in range(30):
            store.insert_job("t.a" if n % 2 else "t.b", {}, user_id=owner)
    owners_seen: set[Any] = set()
    for _ in range(8):
        claimed = claim_at_once(db_url, cap=1)
        running = running_by_owner(db)
        assert all(n <= 1 for n in running.values()), running
        assert len(claimed) == sum(running.values())
        owners_seen |= set(running)
        db.execute("update public.media_jobs set status = 'completed', locked_by = null, locked_until = null "
                   "where status = 'processing'")
    assert owners_seen == {A, B, None}


def test_a_cap_that_is_not_a_positive_integer_is_a_configuration_error() -> None:
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"WORKER_MAX_RUNNING_PER_USER": bad, "WORKER_CONCURRENCY": "0"}, env_file=None)
        message = str(caught.value)
        assert "WORKER_MAX_RUNNING_PER_USER" in message and "WORKER_CONCURRENCY" in message, message
    assert load_settings({"WORKER_MAX_RUNNING_PER_USER": "3"}, env_file=None).worker_max_running_per_user == 3
    assert load_settings({}, env_file=None).worker_max_running_per_user is None


def test_a_worker_with_a_cap_runs_one_of_an_owners_jobs_at_a_time(db_url: str, data_dir: Path, owners: None,
                                                                  db: psycopg.Connection[Any]) -> None:
    env = worker_env(db_url, data_dir, WORKER_CONCURRENCY=4, WORKER_MAX_RUNNING_PER_USER=1,
                     WORKER_HANDLER_MODULES="tests.lifecycle_handlers")
    insert = ("insert into public.media_jobs (user_id, type, payload) "
              "values (%s, 'test.slow', '{\"seconds\": 1}') returning id")
    a_jobs = [str(db.execute(insert, (A,)).fetchone()["id"]) for _ in range(3)]
    others = [str(db.execute(insert, (owner,)).fetchone()["id"]) for owner in (B, C)]
    proc = start_worker(env, "run", "--until-idle")
    try:
        rows = {job: wait_for_status(db_url, job, {"completed"}, timeout=90) for job in a_jobs + others}
    finally:
        proc.kill()
        proc.wait()
    spans = sorted((rows[job]["started_at"], rows[job]["completed_at"]) for job in a_jobs)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), spans
    # B's and C's jobs ran beside A's first one.
    assert all(rows[job]["started_at"] < spans[0][1] for job in others)


def test_status_says_which_owners_wait_for_the_cap(db_url: str, data_dir: Path, store: JobStore) -> None:
    for _ in range(3):
        store.insert_job("t.a", {}, user_id=A)
    assert store.claim_next_job(max_running_per_user=1) is not None
    assert store.claim_next_job(max_running_per_user=1) is None
    out = run_cli(["status"], worker_env(db_url, data_dir, WORKER_MAX_RUNNING_PER_USER=1)).stdout
    assert f"{A}" in out and "2 due job(s) held back" in out, out
    plain = run_cli(["status"], worker_env(db_url, data_dir)).stdout
    assert "held back" not in plain
