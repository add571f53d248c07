"""The queue side of a worker process: one thread claims jobs for every slot and records their
completions, a batch per statement.

Slots hand in finished jobs and wait for their next one. Each round completes every job handed
in since the last round and leases a job to every slot that wants one, in one statement and one
commit (COMPLETE_AND_CLAIM). Under load a round carries many slots' work, so the queue's cost per
job falls as the load rises, as in the faster Postgres queues. An idle worker still starts a job
one claim after the insert's NOTIFY: this thread waits on the LISTEN socket itself and hands the
claimed job straight to the waiting slot.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any
from uuid import UUID

from utils.backoff import backoff_delay
from worker.db import ClaimedJob, Completion, JobStore
from worker.db.listener import JobNotifications
from worker.errors import DatabaseUnavailable, LeaseLost
from worker.logs import JOB_LOG_CONTEXT, log

DB_RETRY_CAP_SECONDS = 30.0


class _Request:
    """A slot waiting on the dispatcher: for a job, or for its completion to be recorded."""

    __slots__ = ("slot", "completion", "wants_job", "_unanswered", "_job", "_error")

    def __init__(self, slot: str, completion: Completion | None, wants_job: bool) -> None:
        self.slot, self.completion, self.wants_job = slot, completion, wants_job
        # Held until answered: a bare lock is the cheapest hand-off between threads in CPython
        # (an Event runs a Condition in Python; it was a fifth of the worker's time per job).
        self._unanswered = threading.Lock()
        self._unanswered.acquire()
        self._job: ClaimedJob | None = None
        self._error: Exception | None = None

    def answer(self, job: ClaimedJob | None = None, error: Exception | None = None) -> None:
        self._job, self._error = job, error
        self._unanswered.release()

    def wait(self) -> ClaimedJob | None:
        self._unanswered.acquire()
        if self._error is not None:
            raise self._error
        return self._job


class Dispatcher(threading.Thread):
    """Claims and completions for all slots of one worker (slots named by their lease holder id)."""

    def __init__(self, store: JobStore, types: tuple[str, ...], poll_seconds: float,
                 notifications: JobNotifications | None, stopping: threading.Event, until_idle: bool) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.store, self.types, self.poll_seconds = store, types, poll_seconds
        self.notifications = notifications  # None: poll only (transaction pooler, --until-idle)
        self.stopping, self.until_idle = stopping, until_idle
        self._incoming: list[_Request] = []
        self._lock = threading.Lock()
        self._closed = False
        self._bell, self._bell_rope = socket.socketpair()
        self._bell.setblocking(False)
        self._bell_rope.setblocking(False)
        # Held by whoever runs a round: this thread, or a slot that found no round running.
        # What follows is only touched under it.
        self._round_lock = threading.Lock()
        self._look_again = False
        self._waiting: list[_Request] = []  # idle slots, until a round finds them a job
        self._next_poll = 0.0
        self._failures = 0
        # After a round whose reply was lost: slot -> the job it still runs (None: none). Jobs the
        # lost round leased to these slots are given back before anything else is claimed.
        self._unsure: dict[str, UUID | None] = {}

    # Called by slots.

    def next_job(self, slot: str) -> ClaimedJob | None:
        """Wait for a job leased to `slot`. None when the worker stops, or, with --until-idle,
        when nothing is claimable now."""
        return self._submit(_Request(slot, None, wants_job=True))

    def complete(self, slot: str, job_id: UUID, result: dict[str, Any], claim_next: bool) -> ClaimedJob | None:
        """Record the job as completed and, if asked, lease `slot` its next job in the same round.

        Raises LeaseLost if the job was no longer leased to `slot`, DatabaseUnavailable if the
        round failed (whether it committed is unknown: the caller checks before retrying)."""
        return self._submit(_Request(slot, Completion(job_id, slot, result), wants_job=claim_next))

    def wake(self) -> None:
        """Look again now: the worker began stopping."""
        self._ring()

    def close(self) -> None:
        """Stop after the slots have: answers anything still waiting, then ends the thread."""
        with self._lock:
            self._closed = True
        self._pull_rope()
        if self.ident is not None:  # it was started
            self.join()
        self.store.close()
        if self.notifications is not None:
            self.notifications.close()
        self._bell.close()
        self._bell_rope.close()

    def _submit(self, request: _Request) -> ClaimedJob | None:
        with self._lock:
            if self._closed:
                return None
            self._incoming.append(request)
            first = len(self._incoming) == 1
        # With no round running, the slot runs one itself: no hand-off to this thread and back
        # (with one slot, that hand-off was a third of the time per job).
        if self._round_lock.acquire(blocking=False):
            # The round serves every slot: its log lines must not carry this slot's job.
            token = JOB_LOG_CONTEXT.set(None)
            try:
                self._take_turn(notified=False)
            finally:
                self._round_lock.release()
                JOB_LOG_CONTEXT.reset(token)
            if self._waiting:  # this thread must know to poll for them
                self._ring()
        elif first:  # later ones ride on the same wake-up
            self._ring()
        return request.wait()

    def _ring(self) -> None:
        with self._lock:
            if not self._closed:
                self._pull_rope()

    def _pull_rope(self) -> None:
        try:
            self._bell_rope.send(b"\0")
        except BlockingIOError:
            pass  # the bell is already full of rings: one is enough

    # The dispatcher thread.

    def run(self) -> None:
        while True:
            try:
                if not self._turn():
                    return
            except Exception:  # noqa: BLE001 - every slot waits on this thread: it must not die
                log.exception("dispatcher_error")
                time.sleep(1.0)
                self._look_again = True  # the ring that woke us may have been used up

    def _turn(self) -> bool:
        """Wait for something to do and do it; False once closed."""
        notified = self._wait()
        with self._round_lock:
            return self._take_turn(notified)

    def _take_turn(self, notified: bool) -> bool:
        """Run a round for what has come in, if due; False once closed."""
        with self._lock:
            batch, self._incoming, closed = self._incoming, [], self._closed
        if closed and not batch:
            self._answer_waiting()
            return False
        completions = [r for r in batch if r.completion is not None]
        arrived = [r for r in batch if r.completion is None]
        self._waiting += arrived
        if self.stopping.is_set():
            self._answer_waiting()
        if completions or (self._waiting and (arrived or notified or time.monotonic() >= self._next_poll)):
            self._round(completions)
        return True

    def _wait(self) -> bool:
        """Sleep until a slot, a notification or the next poll; True if a notification came."""
        timeout: float | None = None
        if self._look_again or self._closed:
            self._look_again, timeout = False, 0.0
        elif self._waiting:
            timeout = max(0.0, self._next_poll - time.monotonic())
        sockets: list[Any] = [self._bell]
        if self.notifications is not None:
            fileno = self.notifications.fileno()
            if fileno is not None:
                sockets.append(fileno)
            else:
                retry = self.notifications.seconds_to_reconnect() or 0.0
                timeout = retry if timeout is None else min(timeout, retry)
        readable, _, _ = select.select(sockets, [], [], timeout)
        if self._bell in readable:
            try:
                while self._bell.recv(4096):
                    pass
            except BlockingIOError:
                pass
        listening = self.notifications
        if listening is None or (listening.fileno() is not None and listening.fileno() not in readable):
            return False
        return listening.read()  # or, while disconnected, try to reconnect

    def _answer_waiting(self) -> None:
        """Stopping: no more claims. Claims a lost reply may have carried go back now, not when
        their lease runs out (another worker would count it as an attempt)."""
        for request in self._waiting:
            request.answer(None)
        self._waiting = []
        try:
            self._give_back_unseen_claims()
        except Exception as exc:  # noqa: BLE001 - their leases still run out
            log.warning("unknown_claims_not_released", error=str(exc))

    def _round(self, completions: list[_Request]) -> None:
        claimers = [] if self.stopping.is_set() else [r for r in completions if r.wants_job] + self._waiting
        try:
            self._give_back_unseen_claims()
            done, claimed = self.store.complete_and_claim(
                [r.completion for r in completions if r.completion is not None], [r.slot for r in claimers],
                self.types)
        except DatabaseUnavailable as exc:
            self._round_failed(exc, completions, claimers)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not strand every slot
            log.exception("queue_round_error")
            self._round_failed(exc, completions, claimers)
            return
        if self._failures:
            log.info("database_reconnected")
            self._failures = 0
        self._next_poll = time.monotonic() + self.poll_seconds
        for request in completions:
            if request.completion is not None and request.completion.job_id not in done:
                request.answer(error=LeaseLost("the job's lease was lost before it could be finished; "
                                               "nothing was written"))
            else:
                request.answer(claimed.get(request.slot))
        still_waiting = []
        for request in self._waiting:
            job = claimed.get(request.slot)
            if job is not None or self.until_idle:
                request.answer(job)
            else:
                still_waiting.append(request)
        self._waiting = still_waiting

    def _round_failed(self, exc: Exception, completions: list[_Request], claimers: list[_Request]) -> None:
        """Completions learn of it (their runner retries); waiting slots go on waiting."""
        for request in claimers:
            self._unsure[request.slot] = request.completion.job_id if request.completion else None
        for request in completions:
            request.answer(error=exc)
        self._failures += 1
        delay = backoff_delay(self._failures, 0.5, DB_RETRY_CAP_SECONDS)
        self._next_poll = time.monotonic() + delay
        if isinstance(exc, DatabaseUnavailable):
            log.warning("database_unavailable", error=str(exc), retry_in=round(delay, 1))

    def _give_back_unseen_claims(self) -> None:
        """A lost reply may have carried claims: give back whatever those slots hold but do not run."""
        if not self._unsure:
            return
        keep = [job_id for job_id in self._unsure.values() if job_id is not None]
        released = self.store.release_unknown_claims(keep, slots=list(self._unsure))
        self._unsure = {}
        if released:
            log.warning("unknown_claims_released", jobs=released,
                        reason="a reply lost with the database connection carried claims no slot saw")
