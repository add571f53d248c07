"""Supervising one ffmpeg run: its own process group, -progress parsing, a wall-clock limit,
a stall watchdog and stop requests, each of which kills the whole group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from utils.ffmpeg import STDERR_TAIL_LINES, FFmpegStopped, MediaError


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Progress:
    """ffmpeg's -progress output as it arrives; written by the reader thread."""

    out_time: float = 0.0
    changed_at: float = field(default_factory=time.monotonic)
    last_block: tuple[str, ...] = ()
    block: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str) -> bool:
        """Take one `key=value` line; return True at the end of a block that moved forward."""
        key, _, value = line.strip().partition("=")
        if key != "progress":
            self.block[key] = value
            return False
        fingerprint = tuple(self.block.get(k, "") for k in ("out_time_us", "total_size", "frame"))
        seconds = parse_out_time(self.block)
        if seconds is not None and seconds > self.out_time:
            self.out_time = seconds
        moved = fingerprint != self.last_block
        if moved:
            self.last_block = fingerprint
            self.changed_at = time.monotonic()
        self.block = {}
        return moved


def parse_out_time(block: dict[str, str]) -> float | None:
    """Seconds of output written, from a -progress block; None for N/A or negative values."""
    for key in ("out_time_us", "out_time_ms"):  # both are microseconds
        value = _integer(block.get(key))
        if value is not None:
            return value / 1_000_000 if value >= 0 else None
    return None


@dataclass(frozen=True)
class RunLimits:
    timeout_seconds: float
    stall_seconds: float


def run_ffmpeg(argv: list[str], *, duration: float, limits: RunLimits,
               on_progress: Callable[[float], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False, poll_seconds: float = 0.2) -> str:
    """Run ffmpeg (argv without -progress) under supervision; return the tail of its stderr.

    Reports progress as a fraction 0..1 of `duration`. Raises MediaError when ffmpeg fails,
    times out or stalls (the latter two retryable), and FFmpegStopped when should_stop() turns true.
    """
    cmd = dies_with_parent([argv[0], "-nostdin", "-progress", "pipe:1", "-nostats", *argv[1:]])
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    progress, errors = _Progress(), deque[str](maxlen=STDERR_TAIL_LINES)
    readers = [threading.Thread(target=_read_progress, args=(proc, progress), daemon=True),
               threading.Thread(target=_read_stderr, args=(proc, errors), daemon=True)]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if should_stop():
                raise FFmpegStopped("ffmpeg was stopped on request")
            if now - started > limits.timeout_seconds:
                raise MediaError(f"ffmpeg ran over its {limits.timeout_seconds:.0f}s limit "
                                 "(FFMPEG_TIMEOUT_SECONDS) and was killed", "\n".join(errors), retryable=True)
            if now - progress.changed_at > limits.stall_seconds:
                raise MediaError(f"ffmpeg made no progress for {limits.stall_seconds:.0f}s "
                                 "(FFMPEG_STALL_SECONDS) and was killed", "\n".join(errors), retryable=True)
            if on_progress and duration > 0:
                on_progress(min(progress.out_time / duration, 1.0))
            _wait_briefly(proc, poll_seconds)
    finally:
        if proc.poll() is None:
            kill_process_group(proc)
        for reader in readers:
            reader.join(timeout=5)
        # A reader still blocked means something outside the group holds the pipe; closing it under
        # the reader would deadlock, so leave it to the daemon thread.
        if not any(reader.is_alive() for reader in readers):
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    if proc.returncode != 0:
        tail = "\n".join(errors)
        killed = proc.returncode < 0
        disk_full = "No space left on device" in tail  # the machine's fault, not the input's
        reason = (f"ffmpeg was killed by signal {-proc.returncode}" if killed
                  else "ffmpeg ran out of disk space: free space under WORKER_TEMP_DIR" if disk_full
                  else f"ffmpeg failed (exit {proc.returncode}) on this input")
        raise MediaError(reason, tail, retryable=killed or disk_full)
    if on_progress:
        on_progress(1.0)
    return "\n".join(errors)


# setpriv (util-linux) sets PR_SET_PDEATHSIG and then execs ffmpeg, so a worker killed with
# SIGKILL (OOM killer, kill -9) takes its ffmpeg with it instead of leaving it to encode for
# nobody. subprocess's preexec_fn could do the same, but is unsafe in a threaded program.
SETPRIV = shutil.which("setpriv")


def dies_with_parent(cmd: list[str]) -> list[str]:
    """cmd, run so that the kernel kills it if the thread that started it dies."""
    return [SETPRIV, "--pdeathsig", "KILL", "--", *cmd] if SETPRIV else cmd


def _wait_briefly(proc: subprocess.Popen[str], seconds: float) -> None:
    # wait() rather than sleep(): the supervisor notices ffmpeg's exit at once, not up to a poll later.
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


def _read_progress(proc: subprocess.Popen[str], progress: _Progress) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        progress.feed(line)


def _read_stderr(proc: subprocess.Popen[str], lines: deque[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip():
            lines.append(line.rstrip())


def kill_process_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ffmpeg and anything it started, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
