"""Recording a job's outcome: what a slot hands the dispatcher, the statement each outcome
takes, and the one check of whether a write whose reply was lost had committed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from uuid import UUID

from utils.redaction import redact
from worker.db import ClaimedJob, Completion, JobStore
from worker.outcome import Cancelled, Completed, Exhausted, Failed, Outcome, Released, Retry


@dataclass(frozen=True)
class Recorded:
    """What became of a slot's request: the job's state as written, and the slot's next job."""

    state: str
    next_job: ClaimedJob | None


class Request:
    """A slot waiting on the dispatcher: for a job, or for its job's outcome to be recorded."""

    __slots__ = ("slot", "job_id", "outcome", "wants_job", "deadline", "state", "unsure", "_unanswered",
                 "_recorded")

    def __init__(self, slot: str, job_id: UUID | None, outcome: Outcome | None, wants_job: bool,
                 deadline: float = 0.0) -> None:
        self.slot, self.job_id, self.outcome, self.wants_job = slot, job_id, outcome, wants_job
        self.deadline = deadline  # monotonic; past it, an unwritten outcome is given up on
        self.state: str | None = None  # set once the outcome is written
        self.unsure = False  # a round carrying it failed: it may have committed unanswered
        # Held until answered: a bare lock is the cheapest hand-off between threads in CPython
        # (an Event runs a Condition in Python; it was a fifth of the worker's time per job).
        self._unanswered = threading.Lock()
        self._unanswered.acquire()
        self._recorded = Recorded("not_written", None)

    @property
    def outcome_name(self) -> str:
        return self.outcome.name if self.outcome is not None else "none"

    def completion(self) -> Completion:
        assert isinstance(self.outcome, Completed) and self.job_id is not None
        return Completion(self.job_id, self.slot, self.outcome.result)

    def answer(self, recorded: Recorded) -> None:
        self._recorded = recorded
        self._unanswered.release()

    def wait(self) -> Recorded:
        self._unanswered.acquire()
        return self._recorded


def write_outcome(store: JobStore, holder: str, job_id: UUID | None, outcome: Outcome | None) -> str:
    """Write an outcome other than a completion (those go in the round's batch) for the job
    leased to `holder`; return the job's state. Raises LeaseLost, DatabaseUnavailable."""
    assert job_id is not None
    match outcome:
        # The owner reads `error`: a message quoting a server's answer must not carry our key.
        case Failed(message=message):
            status = store.fail_job(job_id, redact(message), holder)
        case Retry(message=message, delay_seconds=delay):
            status = store.retry_or_fail_job(job_id, redact(message), delay, holder)
        case Exhausted():
            status = store.fail_lost_job(job_id, holder)
        case Cancelled():
            status = store.cancel_running_job(job_id, holder)
        case Released():
            status = store.release_job(job_id, holder)
        case _:
            raise TypeError(f"no statement records {outcome!r}")
    return state_after(outcome, status)


def already_written(store: JobStore, job_id: UUID | None, outcome: Outcome | None) -> str | None:
    """The state an earlier write of `outcome` left, if it committed though its reply was lost."""
    row = store.get_job(job_id) if job_id is not None and outcome is not None else None
    if row is None or outcome is None or row.locked_by is not None or row.status not in outcome.written_as:
        return None
    return state_after(outcome, row.status)


def state_after(outcome: Outcome, status: str) -> str:
    """The state a slot reports for a job written as `status`: a release says "released"."""
    return "released" if isinstance(outcome, Released) and status == "pending" else status
