"""The runner's last write of a job when the database loses its reply: no job may end up leased
to a worker that does not know it holds it (it would sit until the lease ran out, then count an
attempt it never made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from handlers import register
from handlers.base import Handler, HandlerResult, Payload, TaskContext
from utils.storage import LocalStorage
from worker.config import load_settings
from worker.control import Heartbeat, JobControl
from worker.daemon import Worker
from worker.db import ClaimedJob, JobStore
from worker.errors import DatabaseUnavailable
from worker.runner import JobRunner
from worker.runtime import media_settings


class EmptyPayload(Payload):
    pass


def run_nothing(payload: EmptyPayload, ctx: TaskContext) -> HandlerResult:
    return HandlerResult([])


register(Handler("test.nothing", EmptyPayload, run_nothing))


class ReplyLostOnce(JobStore):
    """A real store whose first complete-and-claim commits, but whose reply never arrives."""

    dropped = False

    def complete_and_claim_next(self, job_id: UUID, result: dict[str, Any],
                                types: tuple[str, ...] = ()) -> ClaimedJob | None:
        next_job = super().complete_and_claim_next(job_id, result, types)
        if not self.dropped:
            self.dropped = True
            raise DatabaseUnavailable("database connection lost: server closed the connection unexpectedly")
        return next_job


def test_a_lost_reply_gives_back_the_job_it_claimed_unseen(db_url: str, tmp_path: Path) -> None:
    store = ReplyLostOnce(db_url, "test:runner/0", lease_seconds=30)
    try:
        first = store.insert_job("test.nothing", {})
        second = store.insert_job("test.nothing", {})
        settings = load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work")}, env_file=None)
        runner = JobRunner(store, LocalStorage(tmp_path / "storage"), settings, media_settings(settings),
                           Heartbeat(store, 5, 30, name="heartbeat-test"), next_types=lambda: ())
        job = store.claim_next_job()
        assert job is not None and job.id == first.id

        assert runner.run(job, JobControl()) is None  # the unseen claim is not run blind

        done, waiting = store.get_job(first.id), store.get_job(second.id)
        assert done is not None and done.status == "completed"
        assert waiting is not None and waiting.status == "pending"
        assert waiting.locked_by is None and waiting.attempts == 0  # given back, no attempt counted
    finally:
        store.close()


def test_a_completion_hands_over_the_next_job_while_the_queue_has_work(db_url: str, tmp_path: Path) -> None:
    store = JobStore(db_url, "test:runner/0", lease_seconds=30)
    try:
        first, second = store.insert_job("test.nothing", {}), store.insert_job("test.nothing", {})
        settings = load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work")}, env_file=None)
        types: tuple[str, ...] | None = ()
        runner = JobRunner(store, LocalStorage(tmp_path / "storage"), settings, media_settings(settings),
                           Heartbeat(store, 5, 30, name="heartbeat-test"), next_types=lambda: types)
        job = store.claim_next_job()
        assert job is not None and job.id == first.id
        chained = runner.run(job, JobControl())
        assert chained is not None and chained.id == second.id
        types = None  # the worker is stopping: a completion claims nothing more
        third = store.insert_job("test.nothing", {})
        assert runner.run(chained, JobControl()) is None
        left = store.get_job(third.id)
        assert left is not None and left.status == "pending"
        assert not list((tmp_path / "work").glob("job-*"))  # no directory was made for these tasks
    finally:
        store.close()


def test_a_slot_that_crashes_gives_back_the_job_it_had_claimed(db_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore(db_url, "test:setup", lease_seconds=30)
    first, second = store.insert_job("test.nothing", {}), store.insert_job("test.nothing", {})
    real_run, crashes = JobRunner.run, []

    def run_then_crash(self: JobRunner, job: ClaimedJob, control: JobControl) -> ClaimedJob | None:
        chained = real_run(self, job, control)
        if not crashes:  # a bug after the completion that claimed the next job
            crashes.append(chained)
            raise RuntimeError("bug in the slot loop (test)")
        return chained

    monkeypatch.setattr(JobRunner, "run", run_then_crash)
    settings = load_settings({"WORKER_TEMP_DIR": str(tmp_path / "work"), "LOG_LEVEL": "warning"}, env_file=None)
    worker = Worker(settings, db_url, media_settings(settings), "test:crash",
                    storage_factory=lambda: LocalStorage(tmp_path / "storage"), until_idle=True)
    assert worker.run() == 0
    try:
        assert crashes and crashes[0] is not None and crashes[0].id == second.id
        for job_id in (first.id, second.id):
            row = store.get_job(job_id)
            assert row is not None and row.status == "completed"
        again = store.get_job(second.id)
        assert again is not None and again.attempts == 1 and again.errors == []  # not "worker lost"
    finally:
        store.close()
