"""When a heartbeat writes: a progress step, a new stage, or its interval; never after a lost lease."""

from __future__ import annotations

import pytest

from worker.control import PROGRESS_STEP, renewal_due
from worker.errors import CancelRequested, JobInterrupted, LeaseLost, ShutdownRequested

INTERVAL = 5.0
WRITTEN = (40.0, "transcoding")  # what the last write published, at t = 100


def due(progress: float = 40.0, stage: str = "transcoding", now: float = 100.0,
        interrupted: JobInterrupted | None = None) -> bool:
    return renewal_due(progress, stage, WRITTEN, 100.0, now, INTERVAL, interrupted)


def test_nothing_new_before_the_interval_is_not_due() -> None:
    assert not due()
    assert not due(now=100.0 + INTERVAL - 0.01)
    assert not due(progress=40.0 + PROGRESS_STEP - 0.01)
    assert not due(progress=40.0 - PROGRESS_STEP + 0.01)


def test_the_interval_makes_a_renewal_due_even_without_progress() -> None:
    assert due(now=100.0 + INTERVAL)
    assert due(now=100.0 + INTERVAL + 30)


def test_a_progress_step_either_way_or_a_new_stage_is_due_at_once() -> None:
    assert due(progress=40.0 + PROGRESS_STEP)
    assert due(progress=40.0 - PROGRESS_STEP)  # progress may restart (a second pass)
    assert due(stage="uploading")


def test_the_first_write_of_a_job_is_due_at_once() -> None:
    assert renewal_due(0.0, "claimed", (-1.0, ""), 100.0, 100.0, INTERVAL, None)


@pytest.mark.parametrize("reason", [CancelRequested("x"), ShutdownRequested("x")])
def test_a_cancel_or_shutdown_keeps_renewing_the_lease(reason: JobInterrupted) -> None:
    assert due(now=100.0 + INTERVAL, interrupted=reason)
    assert due(stage="uploading", interrupted=reason)


def test_a_lost_lease_ends_renewals_whatever_else_changed() -> None:
    lost = LeaseLost("another worker owns it")
    assert not due(now=100.0 + INTERVAL * 10, interrupted=lost)
    assert not due(progress=99.0, stage="uploading", interrupted=lost)
