"""Supervising one ffmpeg run: its own process group, -progress parsing, a wall-clock limit,
a stall watchdog and stop requests, each of which kills the whole group.

When to kill (the limits and the stall rule) is decided in `utils.ffmpeg_watchdog`.
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

from utils.ffmpeg import STDERR_TAIL_LINES
from utils.ffmpeg_watchdog import RunLimits, Watchdog, exit_failure


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


def run_ffmpeg(argv: list[str], *, duration: float, limits: RunLimits,
               on_progress: Callable[[float], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False, poll_seconds: float = 0.2) -> str:
    """Run ffmpeg (argv without -progress) under supervision; return the tail of its stderr.

    Reports progress as a fraction 0..1 of `duration`. Raises MediaError when ffmpeg fails,
    times out or stalls (the latter two retryable), and FFmpegStopped when should_stop() turns true.
    """
    run = SupervisedRun.start(argv)
    watchdog = Watchdog(limits, should_stop)
    try:
        while run.proc.poll() is None:
            watchdog.check(time.monotonic(), run.progress.changed_at, run.stderr_tail())
            if on_progress and duration > 0:
                on_progress(min(run.progress.out_time / duration, 1.0))
            _wait_briefly(run.proc, poll_seconds)
    finally:
        run.close()
    failure = exit_failure(run.proc.returncode, run.stderr_tail())
    if failure is not None:
        raise failure
    if on_progress:
        on_progress(1.0)
    return run.stderr_tail()


@dataclass
class SupervisedRun:
    """One ffmpeg process in its own group, with threads reading its -progress and stderr pipes."""

    proc: subprocess.Popen[str]
    progress: _Progress = field(default_factory=_Progress)
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, argv: list[str]) -> SupervisedRun:
        """Start ffmpeg with -progress on stdout, no stdin, and a new session (so a process group)."""
        cmd = dies_with_parent([argv[0], "-nostdin", "-progress", "pipe:1", "-nostats", *argv[1:]])
        run = cls(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True))
        run.readers = [threading.Thread(target=_read_progress, args=(run.proc, run.progress), daemon=True),
                       threading.Thread(target=_read_stderr, args=(run.proc, run.errors), daemon=True)]
        for reader in run.readers:
            reader.start()
        return run

    def stderr_tail(self) -> str:
        return "\n".join(self.errors)

    def close(self) -> None:
        """Kill the group if ffmpeg still runs, then let the readers finish and close the pipes."""
        if self.proc.poll() is None:
            kill_process_group(self.proc)
        for reader in self.readers:
            reader.join(timeout=5)
        # A reader still blocked means something outside the group holds the pipe; closing it under
        # the reader would deadlock, so leave it to the daemon thread.
        if not any(reader.is_alive() for reader in self.readers):
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()


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
