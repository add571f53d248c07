"""Whether a worker process of this host is still the one that registered.

A pid alone is not proof: pids are reused, and a pid means nothing in another pid namespace
(containers) or after a reboot. A process is the same one when its host, boot, pid namespace,
pid and start time (/proc/<pid>/stat field 22, clock ticks since boot) all match. `judge` is
pure; `read_stat` and `this_process` read /proc.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
ENDED_STATES = ("Z", "X")  # a zombie or a dead task: the process has exited, only its entry remains


@dataclass(frozen=True)
class ProcessIdentity:
    """Where and when a process started; None where this system cannot tell."""

    host: str
    pid: int
    boot_id: str | None
    pid_namespace: str | None
    start_ticks: int | None


@dataclass(frozen=True)
class ProcessStat:
    """What /proc/<pid>/stat says of a live pid: its state letter and start time (None: unreadable)."""

    state: str
    start_ticks: int | None


class Liveness(enum.Enum):
    ALIVE = "alive"  # the recorded process is running
    ENDED = "ended"  # it is gone: no such pid, a zombie, or the pid now belongs to another process
    UNKNOWN = "unknown"  # this host cannot tell (another host, boot or pid namespace; no /proc)


def parse_stat(text: str) -> ProcessStat:
    """State (field 3) and starttime (field 22) of a /proc/<pid>/stat line. Raises ValueError.

    The command name (field 2) is in parentheses and may itself hold spaces and ')'."""
    fields = text[text.rindex(")") + 2:].split()
    return ProcessStat(fields[0], int(fields[19]))


def comparable(recorded: ProcessIdentity, here: ProcessIdentity) -> bool:
    """Whether `recorded`'s pid means the same here: same host, boot and pid namespace, all known."""
    scope = (recorded.host, recorded.boot_id, recorded.pid_namespace)
    return None not in scope and recorded.start_ticks is not None \
        and scope == (here.host, here.boot_id, here.pid_namespace)


def judge(recorded: ProcessIdentity, here: ProcessIdentity, seen: ProcessStat | None) -> Liveness:
    """Whether `recorded` is alive, judged from `here` (this process) by what /proc shows of its
    pid now (`seen`, None when no process has that pid)."""
    if not comparable(recorded, here):
        return Liveness.UNKNOWN  # its pid would mean nothing here; leave it to its lease
    if seen is None or seen.state in ENDED_STATES:
        return Liveness.ENDED
    if seen.start_ticks is None:
        return Liveness.UNKNOWN
    return Liveness.ALIVE if seen.start_ticks == recorded.start_ticks else Liveness.ENDED


def read_stat(pid: int, proc: Path = PROC) -> ProcessStat | None:
    """What /proc shows of `pid` now; None when no process has it. A process we may not read
    (hidepid, another user) is reported with an unknown start time, never as gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None if not pid_exists(pid) else ProcessStat("?", None)
    except (OSError, ValueError, IndexError):
        return ProcessStat("?", None)


def pid_exists(pid: int) -> bool:
    """Whether a process has this pid here (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def liveness(recorded: ProcessIdentity, here: ProcessIdentity) -> Liveness:
    """Whether the recorded process is alive, as far as this host can tell."""
    if not comparable(recorded, here):
        return Liveness.UNKNOWN
    return judge(recorded, here, read_stat(recorded.pid))


def this_process(proc: Path = PROC) -> ProcessIdentity:
    """The identity of the calling process (None fields where /proc does not say)."""
    pid = os.getpid()
    seen = read_stat(pid, proc)
    return ProcessIdentity(socket.gethostname(), pid, _read(proc / "sys/kernel/random/boot_id"),
                           _readlink(proc / "self/ns/pid"), seen.start_ticks if seen else None)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def workers_by_type(type_lists: Iterable[Sequence[str]], types: Iterable[str] = ()) -> dict[str, int]:
    """How many workers take each job type: `types` and every type a worker names. A worker
    with an empty list takes every type; they are also counted under "*"."""
    lists = [tuple(t) for t in type_lists]
    named = sorted(set(types).union(*lists))
    counts = {t: sum(1 for taken in lists if not taken or t in taken) for t in named}
    counts["*"] = sum(1 for taken in lists if not taken)
    return counts
