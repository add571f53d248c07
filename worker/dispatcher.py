"""The queue side of a worker process: one owner for every claim and every job outcome.

Slots hand in how their job ended (an Outcome) and wait for their next job. Each round records
every outcome handed in since the last round and leases a job to every slot that wants one:
completions and claims in one statement and one commit (COMPLETE_AND_CLAIM), the rarer outcomes
each in its own statement first. Under load a round carries many slots' work, so the cost per
job falls as the load rises. An idle worker starts a job one claim after the insert's NOTIFY:
this thread waits on the LISTEN socket itself and hands the claimed job straight to the slot.

When a round fails with the database away, its outcomes stay here and are written again at the
next round while their lease lasts. Whether a write whose reply was lost had committed is
checked in one place (worker.recording.already_written); claims no slot runs, after a lost reply
or a slot's crash, are given back in one place (`_give_back_unseen_claims`).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any
from uuid import UUID

from utils.backoff import backoff_delay
from worker.db import ClaimedJob, JobStore
from worker.db.listener import JobNotifications
from worker.errors import DatabaseUnavailable, LeaseLost
from worker.logs import JOB_LOG_CONTEXT, log
from worker.outcome import Abandoned, Completed, Outcome
from worker.recording import Recorded, Request, already_written, write_outcome

DB_RETRY_CAP_SECONDS = 30.0


class Dispatcher(threading.Thread):
    """Claims and outcomes for all slots of one worker (slots named by their lease holder id)."""

    def __init__(self, store: JobStore, types: tuple[str, ...], poll_seconds: float, notifications: JobNotifications | None,
                 stopping: threading.Event, until_idle: bool, cap: int | None = None) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.store, self.types, self.poll_seconds = store, types, poll_seconds
        self.notifications = notifications  # None: poll only (transaction pooler, --until-idle)
        self.stopping, self.until_idle, self.cap_kw = stopping, until_idle, {"max_running_per_user": cap} if cap else {}
        self._incoming: list[Request] = []
        self._lock = threading.Lock()
        self._closed = False
        self._bell, self._bell_rope = socket.socketpair()
        self._bell.setblocking(False)
        self._bell_rope.setblocking(False)
        # Held by whoever runs a round: this thread, or a slot that found no round running.
        # What follows is only touched under it.
        self._round_lock = threading.Lock()
        self._look_again = False
        self._waiting: list[Request] = []  # idle slots, until a round finds them a job
        self._unwritten: list[Request] = []  # outcomes not yet recorded (the database was away)
        self._next_poll = 0.0
        self._failures = 0
        # After a round whose reply was lost, or a slot's crash: slot -> the job it still runs
        # (None: none). Whatever else is leased to these slots is given back before the next claim.
        self._unsure: dict[str, UUID | None] = {}

    # Called by slots.

    def next_job(self, slot: str) -> ClaimedJob | None:
        """Wait for a job leased to `slot`. None when the worker stops, or, with --until-idle,
        when nothing is claimable now."""
        return self._submit(Request(slot, None, None, wants_job=True)).next_job

    def record(self, slot: str, job_id: UUID, outcome: Outcome, claim_next: bool) -> Recorded:
        """Record how `slot`'s job ended and, if asked, lease the slot its next job in the same round.

        Returns the job's state as written ("lease_lost" when another worker owns it now,
        "not_written" when the database could not take it before the lease ran out) and the next job."""
        if isinstance(outcome, Abandoned):
            log.warning("job_abandoned", reason=outcome.reason)
            return Recorded(outcome.name, None)
        return self._submit(Request(slot, job_id, outcome, claim_next, time.monotonic() + self.store.lease_seconds))

    def forget_claims(self, slot: str, keep: UUID | None = None) -> None:
        """`slot` crashed: give back whatever is leased to it but `keep` at the next round."""
        with self._round_lock:
            self._unsure[slot] = keep

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

    def _submit(self, request: Request) -> Recorded:
        with self._lock:
            if self._closed:
                return Recorded("not_written" if request.outcome else "stopped", None)
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
            if self._waiting or self._unwritten:  # this thread must know to come back for them
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
        if closed and not batch and not self._unwritten:
            self._answer_waiting()
            return False
        fresh = [r for r in batch if r.outcome is not None]
        arrived = [r for r in batch if r.outcome is None]
        self._unwritten += fresh
        self._waiting += arrived
        if self.stopping.is_set():
            self._answer_waiting()
        due = time.monotonic() >= self._next_poll
        if fresh or (self._unwritten and due) or (self._waiting and (arrived or notified or due)):
            self._round()
        return True

    def _wait(self) -> bool:
        """Sleep until a slot, a notification or the next poll; True if a notification came."""
        timeout: float | None = None
        if self._look_again or self._closed:
            self._look_again, timeout = False, 0.0
        elif self._waiting or self._unwritten:
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
            request.answer(Recorded("stopped", None))
        self._waiting = []
        try:
            self._give_back_unseen_claims()
        except Exception as exc:  # noqa: BLE001 - their leases still run out
            log.warning("unknown_claims_not_released", error=str(exc))

    def _round(self) -> None:
        """Record the outcomes handed in, then claim for the slots that want a job."""
        outcomes = self._unwritten
        claimers = [] if self.stopping.is_set() else [r for r in outcomes if r.wants_job] + self._waiting
        try:
            self._give_back_unseen_claims()
            for request in outcomes:
                if not isinstance(request.outcome, Completed) and request.state is None:
                    request.state = self._write(request)
            completions = [r for r in outcomes if isinstance(r.outcome, Completed)]
            claimers = [r for r in claimers if r.state != "lease_lost"]
            done, claimed = self.store.complete_and_claim([r.completion() for r in completions], [r.slot for r in claimers],
                                                          self.types, **self.cap_kw)
        except DatabaseUnavailable as exc:
            self._round_failed(exc, claimers)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not strand every slot
            log.exception("queue_round_error")
            self._round_failed(exc, claimers)
            return
        for request in completions:
            request.state = "completed" if request.job_id in done else self._lost(request)
        self._answer(outcomes, claimed)

    def _write(self, request: Request) -> str:
        """Write one outcome other than a completion; its state, or "lease_lost"."""
        try:
            return write_outcome(self.store, request.slot, request.job_id, request.outcome)
        except LeaseLost:
            return self._lost(request)

    def _lost(self, request: Request) -> str:
        """A write that changed no row: our lease is gone, unless an earlier try committed and
        only its reply was lost."""
        if request.unsure:
            state = already_written(self.store, request.job_id, request.outcome)
            if state is not None:
                return state
        log.warning("job_result_not_written", job_id=str(request.job_id), outcome=request.outcome_name,
                    reason="the job's lease was lost before it could be finished; nothing was written")
        return "lease_lost"

    def _answer(self, outcomes: list[Request], claimed: dict[str, ClaimedJob]) -> None:
        if self._failures:
            log.info("database_reconnected")
            self._failures = 0
        self._next_poll = time.monotonic() + self.poll_seconds
        self._unwritten = []
        for request in outcomes:
            request.answer(Recorded(request.state or "not_written",
                                    claimed.get(request.slot) if request.wants_job else None))
        still_waiting = []
        for request in self._waiting:
            job = claimed.get(request.slot)
            if job is not None or self.until_idle:
                request.answer(Recorded("claimed" if job else "idle", job))
            else:
                still_waiting.append(request)
        self._waiting = still_waiting

    def _round_failed(self, exc: Exception, claimers: list[Request]) -> None:
        """Outcomes wait for the next round while their lease lasts; idle slots go on waiting."""
        for request in claimers:
            self._unsure[request.slot] = request.job_id
        now, keep = time.monotonic(), []
        for request in self._unwritten:
            request.unsure = True
            if request.state is not None:  # written before the failure
                request.answer(Recorded(request.state, None))
            elif isinstance(exc, DatabaseUnavailable) and now < request.deadline:
                keep.append(request)
            else:  # e.g. a read-only database: the lease will expire and the job run again
                log.error("job_result_not_written", job_id=str(request.job_id), outcome=request.outcome_name,
                          reason=str(exc))
                request.answer(Recorded("not_written", None))
        self._unwritten = keep
        self._failures += 1
        delay = backoff_delay(self._failures, 0.5, DB_RETRY_CAP_SECONDS)
        self._next_poll = time.monotonic() + delay
        if isinstance(exc, DatabaseUnavailable):
            log.warning("database_unavailable", error=str(exc), retry_in=round(delay, 1))

    def _give_back_unseen_claims(self) -> None:
        """A lost reply or a slot's crash may have left claims no slot runs: give them back."""
        if not self._unsure:
            return
        keep = [job_id for job_id in self._unsure.values() if job_id is not None]
        released = self.store.release_unknown_claims(keep, slots=list(self._unsure))
        self._unsure = {}
        if released:
            log.warning("unknown_claims_released", jobs=released,
                        reason="a lost reply or a crashed slot left claims no slot runs")
