"""The supervisor's kill policy, without a process: stop requests, the wall-clock limit, stalls, exit codes."""

import pytest

from utils.ffmpeg import FFmpegStopped, MediaError
from utils.ffmpeg_watchdog import RunLimits, Watchdog, exit_failure

LIMITS = RunLimits(timeout_seconds=60, stall_seconds=10)


def test_a_run_within_its_limits_goes_on() -> None:
    Watchdog(LIMITS, started=100).check(now=159, progressed_at=150, stderr_tail="")


def test_a_stop_request_wins_over_the_limits() -> None:
    with pytest.raises(FFmpegStopped):
        Watchdog(LIMITS, should_stop=lambda: True, started=100).check(now=500, progressed_at=0, stderr_tail="")


def test_past_the_wall_clock_limit_is_a_retryable_error_naming_the_variable() -> None:
    with pytest.raises(MediaError, match="FFMPEG_TIMEOUT_SECONDS") as caught:
        Watchdog(LIMITS, started=100).check(now=161, progressed_at=160, stderr_tail="last words")
    assert caught.value.retryable and caught.value.stderr_tail == "last words"


def test_no_progress_for_the_stall_window_is_a_retryable_error_naming_the_variable() -> None:
    with pytest.raises(MediaError, match="FFMPEG_STALL_SECONDS") as caught:
        Watchdog(LIMITS, started=100).check(now=121, progressed_at=110, stderr_tail="")
    assert caught.value.retryable


@pytest.mark.parametrize(("returncode", "tail", "reason", "retryable"), [
    (-9, "", "killed by signal 9", True),
    (1, "x.mp4: No space left on device", "ran out of disk space", True),
    (1, "Invalid data found when processing input", "failed (exit 1) on this input", False),
])
def test_exit_codes_say_whose_fault_a_failure_is(returncode: int, tail: str, reason: str, retryable: bool) -> None:
    failure = exit_failure(returncode, tail)
    assert failure is not None and reason in str(failure)
    assert failure.retryable is retryable and failure.stderr_tail == tail


def test_exit_zero_is_no_failure() -> None:
    assert exit_failure(0, "warnings") is None
