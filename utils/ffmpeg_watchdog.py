"""When a supervised ffmpeg must be killed: a stop request, its wall-clock limit, or a stall.

The policy only decides; `utils.ffmpeg_supervisor` owns the process and kills its group.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from utils.ffmpeg import FFmpegStopped, MediaError


@dataclass(frozen=True)
class RunLimits:
    """FFMPEG_TIMEOUT_SECONDS and FFMPEG_STALL_SECONDS for one run."""

    timeout_seconds: float
    stall_seconds: float


@dataclass(frozen=True)
class Watchdog:
    """The limits of one run, counted from `started` (time.monotonic)."""

    limits: RunLimits
    should_stop: Callable[[], bool] = lambda: False
    started: float = field(default_factory=time.monotonic)

    def check(self, now: float, progressed_at: float, stderr_tail: str) -> None:
        """Raise FFmpegStopped on a stop request; a retryable MediaError past the limit or after a stall."""
        if self.should_stop():
            raise FFmpegStopped("ffmpeg was stopped on request")
        if now - self.started > self.limits.timeout_seconds:
            raise MediaError(f"ffmpeg ran over its {self.limits.timeout_seconds:.0f}s limit "
                             "(FFMPEG_TIMEOUT_SECONDS) and was killed", stderr_tail, retryable=True)
        if now - progressed_at > self.limits.stall_seconds:
            raise MediaError(f"ffmpeg made no progress for {self.limits.stall_seconds:.0f}s "
                             "(FFMPEG_STALL_SECONDS) and was killed", stderr_tail, retryable=True)


def exit_failure(returncode: int, stderr_tail: str) -> MediaError | None:
    """What ffmpeg's exit status means for the job: None for success, else the error to raise."""
    if returncode == 0:
        return None
    killed = returncode < 0
    disk_full = "No space left on device" in stderr_tail  # the machine's fault, not the input's
    reason = (f"ffmpeg was killed by signal {-returncode}" if killed
              else "ffmpeg ran out of disk space: free space under WORKER_TEMP_DIR" if disk_full
              else f"ffmpeg failed (exit {returncode}) on this input")
    return MediaError(reason, stderr_tail, retryable=killed or disk_full)
