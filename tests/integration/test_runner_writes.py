"""A slot's last writes when things go wrong: no job may end up leased to a slot that does not
know it holds it (it would sit until the lease ran out, then count an attempt it never made),
and no job may crash a slot forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import structlog

import worker.daemon
from handlers import register
from handlers.base import Handler, HandlerResult, Payload, TaskContext
from utils.storage import LocalStorage
from worker.config import load_settings
from worker.control import Heartbeat, JobControl
from worker.daemon import Worker
from worker.db import ClaimedJob, Completion, JobStore
from worker.dispatcher import Dispatcher
from worker.errors import DatabaseUnavailable
from worker.logs import JOB_LOG_CONTEXT, log_context
from worker.outcome import Completed, Failed, Outcome
from worker.recording import Recorded
from worker.runner import JobRunner
from worker.runtime import media_settings


class EmptyPayload(Payload):
    pass


def run_nothing(payload: EmptyPayload, ctx: TaskContext) -> HandlerResult:
    return HandlerResult([])


register(Handler("test.nothing", EmptyPayload, run_nothing))


def run_worker(db_url: str, tmp_path: Path, **env: str) -> None:
    settings = load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work"), "LOG_LEVEL": "warning", **env},
                             env_file=None)
    worker = Worker(settings, db_url, media_settings(settings), "test:w",
                    storage_factory=lambda: LocalStorage(tmp_path / "storage"), until_idle=True)
    assert worker.run() == 0


def rows(db_url: str, *job_ids: UUID) -> list[Any]:
    store = JobStore(db_url, "test:reader", lease_seconds=30)
    try:
        return [store.get_job(job_id) for job_id in job_ids]
    finally:
        store.close()


def insert(db_url: str, count: int, **kwargs: Any) -> list[UUID]:
    store = JobStore(db_url, "test:setup", lease_seconds=30)
    try:
        return [store.insert_job("test.nothing", {}, **kwargs).id for _ in range(count)]
    finally:
        store.close()


class ReplyLostOnce(JobStore):
    """A real store whose first queue round that completes a job and claims another commits, then
    loses its connection before the reply."""

    dropped = False

    def complete_and_claim(self, completions: Sequence[Completion], claimers: Sequence[str],
                           types: tuple[str, ...] = ()) -> tuple[set[UUID], dict[str, ClaimedJob]]:
        done, claimed = super().complete_and_claim(completions, claimers, types)
        if done and claimed and not ReplyLostOnce.dropped:
            ReplyLostOnce.dropped = True
            assert self._conn is not None
            self._conn.close()
            raise DatabaseUnavailable("database connection lost: server closed the connection unexpectedly")
        return done, claimed


def test_a_lost_reply_gives_back_the_job_it_claimed_unseen(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = insert(db_url, 2)
    monkeypatch.setattr(worker.daemon, "JobStore", ReplyLostOnce)
    run_worker(db_url, tmp_path)
    assert ReplyLostOnce.dropped
    done, released_then_run = rows(db_url, first, second)
    assert done.status == "completed"
    # Given back before the next round (attempt not counted), then claimed and run normally,
    # not left leased to the slot until the lease ran out.
    assert released_then_run.status == "completed"
    assert released_then_run.attempts == 1 and released_then_run.errors == []


def test_a_slot_that_crashes_gives_back_the_job_it_had_claimed(db_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = insert(db_url, 2)
    real_record, real_conclude, recorded = Dispatcher.record, JobRunner.conclude, []

    def record(self: Dispatcher, slot: str, job_id: UUID, outcome: Outcome, claim_next: bool) -> Recorded:
        recorded.append(real_record(self, slot, job_id, outcome, claim_next))
        return recorded[-1]

    def conclude_then_crash(self: JobRunner, job: ClaimedJob, outcome: Outcome, state: str, seconds: float) -> None:
        real_conclude(self, job, outcome, state, seconds)
        if len(recorded) == 1:  # a bug after the record that claimed the next job
            raise RuntimeError("bug in the slot loop (test)")

    monkeypatch.setattr(Dispatcher, "record", record)
    monkeypatch.setattr(JobRunner, "conclude", conclude_then_crash)
    run_worker(db_url, tmp_path)
    chained = recorded[0].next_job
    assert chained is not None and chained.id == second
    done, released_then_run = rows(db_url, first, second)
    assert done.status == "completed" and done.attempts == 1
    assert released_then_run.status == "completed"
    assert released_then_run.attempts == 1 and released_then_run.errors == []  # not "worker lost"


def test_a_job_that_crashes_the_slot_every_time_ends_failed(db_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (job_id,) = insert(db_url, 1, max_attempts=2)

    def crash(self: JobRunner, job: ClaimedJob, control: JobControl, log_context: dict[str, Any]) -> Outcome:
        raise RuntimeError("bug in the slot loop (test)")

    monkeypatch.setattr(JobRunner, "run", crash)
    run_worker(db_url, tmp_path, WORKER_RETRY_BASE_SECONDS="0")
    (row,) = rows(db_url, job_id)
    assert row.status == "failed" and row.attempts == 2
    assert "the worker slot crashed: RuntimeError('bug in the slot loop (test)')" in row.error
    assert "gave up after 2 attempts" in row.error


def runner_for(store: JobStore, tmp_path: Path) -> JobRunner:
    settings = load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work")}, env_file=None)
    return JobRunner(store, LocalStorage(tmp_path / "storage"), settings, media_settings(settings),
                     Heartbeat(store, 5, 30, name="heartbeat-test"))


def test_the_runner_writes_nothing_and_the_dispatcher_hands_over_the_next_job(db_url: str, tmp_path: Path) -> None:
    first, second = insert(db_url, 2)
    slot = "test:runner/0"
    store = JobStore(db_url, slot, lease_seconds=30)
    dispatcher = Dispatcher(JobStore(db_url, "test:runner", 30), (), 1.0, None, threading.Event(), until_idle=True)
    dispatcher.start()
    try:
        runner = runner_for(store, tmp_path)
        job = dispatcher.next_job(slot)
        assert job is not None and job.id == first
        outcome = runner.run(job, JobControl(), {})
        assert outcome == Completed({"outputs": [], "metadata": {}})
        (row,) = rows(db_url, first)
        assert row.status == "processing" and row.locked_by == slot  # nothing written yet
        recorded = dispatcher.record(slot, first, outcome, claim_next=True)
        assert recorded.state == "completed"
        assert recorded.next_job is not None and recorded.next_job.id == second
        (third,) = insert(db_url, 1)
        # e.g. an input to delete first: the record claims nothing more
        recorded = dispatcher.record(slot, second, runner.run(recorded.next_job, JobControl(), {}), claim_next=False)
        assert recorded == Recorded("completed", None)
        (left,) = rows(db_url, third)
        assert left.status == "pending"
        assert not list((tmp_path / "work").glob("job-*"))  # no directory was made for these tasks
    finally:
        dispatcher.close()
        store.close()


class FailReplyLostOnce(JobStore):
    """A real store whose first failure write commits, then loses its connection before the reply."""

    dropped = False

    def fail_job(self, job_id: UUID, error: str, holder: str | None = None) -> str:
        status = super().fail_job(job_id, error, holder)
        if not FailReplyLostOnce.dropped:
            FailReplyLostOnce.dropped = True
            assert self._conn is not None
            self._conn.close()
            raise DatabaseUnavailable("database connection lost: server closed the connection unexpectedly")
        return status


def test_an_outcome_whose_reply_was_lost_is_recorded_once_and_reported_truthfully(db_url: str) -> None:
    (job_id,) = insert(db_url, 1)
    holder = JobStore(db_url, "test:d/0", 30)
    dispatcher = Dispatcher(FailReplyLostOnce(db_url, "test:d", 30), (), 0.05, None, threading.Event(),
                            until_idle=True)
    dispatcher.start()
    try:
        job = holder.claim_next_job()
        assert job is not None and job.id == job_id
        recorded = dispatcher.record("test:d/0", job_id, Failed("bad input: fix it"), claim_next=False)
    finally:
        dispatcher.close()
        holder.close()
    assert FailReplyLostOnce.dropped
    assert recorded.state == "failed"  # not "lease_lost": the first write had committed
    (row,) = rows(db_url, job_id)
    assert row.status == "failed" and [e["error"] for e in row.errors] == ["bad input: fix it"]


def test_one_round_completes_and_claims_for_many_slots(db_url: str) -> None:
    low, high, urgent = (insert(db_url, 1, priority=p)[0] for p in (0, 5, 9))
    store = JobStore(db_url, "test:w", lease_seconds=30)
    try:
        holders = [JobStore(db_url, f"test:w/{n}", 30) for n in range(3)]
        held = [h.claim_next_job() for h in holders[:2]]  # slots 0 and 1 run urgent and high
        assert [j.id for j in held if j] == [urgent, high]
        fresh = insert(db_url, 2, priority=7)
        with psycopg.connect(db_url, autocommit=True) as conn:  # slot 1 lost its lease to another worker
            conn.execute("update public.media_jobs set locked_by = 'test:other' where id = %s", (high,))
        completions = [Completion(urgent, "test:w/0", {"n": 0}), Completion(high, "test:w/1", {"n": 1})]
        done, claimed = store.complete_and_claim(completions, ["test:w/0", "test:w/1", "test:w/2"])
        assert done == {urgent}
        # Slot 1's completion did not count, so it gets nothing; the others get the two most urgent.
        assert set(claimed) == {"test:w/0", "test:w/2"}
        assert {j.id for j in claimed.values()} == set(fresh)
        for slot, job in claimed.items():
            (row,) = rows(db_url, job.id)
            assert row.locked_by == slot and row.status == "processing"
        (left,) = rows(db_url, low)
        assert left.status == "pending"
        for h in holders:
            h.close()
    finally:
        store.close()


class SeenPayload(Payload):
    pass


SEEN: list[dict[str, Any]] = []


def run_seeing_log_context(payload: SeenPayload, ctx: TaskContext) -> HandlerResult:
    SEEN.append(log_context())
    return HandlerResult([])


register(Handler("test.log_context", SeenPayload, run_seeing_log_context))


def test_a_jobs_log_context_is_bound_while_it_runs_and_reset_after(db_url: str, tmp_path: Path) -> None:
    store = JobStore(db_url, "test:setup", lease_seconds=30)
    try:
        first, second = (store.insert_job("test.log_context", {}).id for _ in range(2))
    finally:
        store.close()
    structlog.contextvars.bind_contextvars(caller="outer")
    try:
        run_worker(db_url, tmp_path)
    finally:
        structlog.contextvars.clear_contextvars()
    # Each job sees its own fields only: nothing of the job before it, nothing of the caller's thread.
    assert SEEN == [{"job_id": str(job_id), "job_type": "test.log_context", "attempt": 1} for job_id in (first, second)]


class ResultPayload(Payload):
    value: str


RESULT_VALUES: dict[str, Any] = {"nan": float("nan"), "inf": float("-inf"), "nul": {"title": "a\0b"},
                                 "path": Path("/tmp"), "backslash": "\\u0000 is fine as text"}


def run_returning(payload: ResultPayload, ctx: TaskContext) -> HandlerResult:
    return HandlerResult([], {"value": RESULT_VALUES[payload.value]})


register(Handler("test.result", ResultPayload, run_returning))


@pytest.mark.parametrize(("value", "message"), [
    ("nan", "returned NaN or Infinity in its result"), ("inf", "returned NaN or Infinity in its result"),
    ("nul", "returned a NUL character in its result"), ("path", "returned a value JSON cannot hold"),
    ("backslash", None),
])
def test_a_result_postgres_cannot_store_fails_the_job_naming_the_handler(
        db_url: str, tmp_path: Path, value: str, message: str | None) -> None:
    store = JobStore(db_url, "test:runner/0", lease_seconds=30)
    try:
        job_id = store.insert_job("test.result", {"value": value}).id
        job = store.claim_next_job(("test.result",))
        assert job is not None and job.id == job_id
        outcome = runner_for(store, tmp_path).run(job, JobControl(), {})
        dispatcher = Dispatcher(JobStore(db_url, "test:runner", 30), (), 60.0, None, threading.Event(), True)
        dispatcher.record(store.worker_id, job_id, outcome, claim_next=False)  # not started: the slot runs the round
        dispatcher.close()
        row = store.get_job(job_id)
        assert row is not None
        if message is None:
            assert row.status == "completed" and row.result["metadata"]["value"] == RESULT_VALUES[value]
        else:
            assert row.status == "failed" and row.attempts == 1
            assert row.error is not None and message in row.error and "test.result handler" in row.error
    finally:
        store.close()


class SeesLogContext(JobStore):
    """A real store that records the log context its queue rounds run in."""

    seen: list[dict[str, Any]] = []

    def complete_and_claim(self, completions: Sequence[Completion], claimers: Sequence[str],
                           types: tuple[str, ...] = ()) -> tuple[set[UUID], dict[str, ClaimedJob]]:
        self.seen.append(log_context())
        return super().complete_and_claim(completions, claimers, types)


def test_a_round_a_slot_runs_itself_does_not_log_as_that_slots_job(db_url: str) -> None:
    store = SeesLogContext(db_url, "test:seen", 30)
    dispatcher = Dispatcher(store, ("test.none",), 60.0, None, threading.Event(), until_idle=True)
    token = JOB_LOG_CONTEXT.set({"job_id": "the-slots-job"})
    try:
        assert dispatcher.next_job("test:seen/0") is None  # not started: the slot runs the round
        assert store.seen == [{}]
        assert log_context() == {"job_id": "the-slots-job"}
    finally:
        JOB_LOG_CONTEXT.reset(token)
        dispatcher.close()


class ClaimReplyLost(JobStore):
    """A real store whose claims commit, then lose their connection before the reply."""

    def complete_and_claim(self, completions: Sequence[Completion], claimers: Sequence[str],
                           types: tuple[str, ...] = ()) -> tuple[set[UUID], dict[str, ClaimedJob]]:
        done, claimed = super().complete_and_claim(completions, claimers, types)
        if claimed:
            assert self._conn is not None
            self._conn.close()
            raise DatabaseUnavailable("database connection lost: server closed the connection unexpectedly")
        return done, claimed


def test_a_claim_whose_reply_was_lost_is_given_back_when_the_worker_stops(db_url: str) -> None:
    (job_id,) = insert(db_url, 1)
    stopping = threading.Event()
    dispatcher = Dispatcher(ClaimReplyLost(db_url, "test:d", 30), (), 60.0, None, stopping, until_idle=False)
    dispatcher.start()
    answers: list[ClaimedJob | None] = []
    slot = threading.Thread(target=lambda: answers.append(dispatcher.next_job("test:d/0")))
    slot.start()
    deadline = time.monotonic() + 10
    while rows(db_url, job_id)[0].status != "processing" and time.monotonic() < deadline:
        time.sleep(0.05)  # the claim committed; its reply never reached the slot, which waits on
    stopping.set()
    dispatcher.wake()
    slot.join(timeout=10)
    dispatcher.close()
    assert answers == [None]
    (row,) = rows(db_url, job_id)
    assert row.status == "pending" and row.locked_by is None and row.attempts == 0
