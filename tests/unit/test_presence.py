"""Telling a live worker process from a dead one, and counting live workers by job type."""

from __future__ import annotations

import os
import subprocess

import pytest

from worker.cli_workers import presence_state
from worker.presence import live_seconds
from worker.process_identity import (
    Liveness,
    ProcessIdentity,
    ProcessStat,
    judge,
    parse_stat,
    read_stat,
    this_process,
    workers_by_type,
)

HERE = ProcessIdentity("box", 100, "boot-1", "pid:[4026531836]", 5000)
RECORDED = ProcessIdentity("box", 42, "boot-1", "pid:[4026531836]", 1234)


def test_parse_stat_reads_state_and_start_time_past_a_name_with_spaces_and_parens() -> None:
    fields = " ".join(str(n) for n in range(4, 22))  # fields 4..21
    line = f"42 (my (odd) worker) S {fields} 987654 23 24\n"
    assert parse_stat(line) == ProcessStat("S", 987654)


def test_parse_stat_refuses_a_truncated_line() -> None:
    with pytest.raises((ValueError, IndexError)):
        parse_stat("42 (python) S 1 2 3")


@pytest.mark.parametrize(("seen", "expected"), [
    (ProcessStat("S", 1234), Liveness.ALIVE),
    (ProcessStat("R", 1234), Liveness.ALIVE),
    (None, Liveness.ENDED),  # no process has the pid
    (ProcessStat("Z", 1234), Liveness.ENDED),  # exited, not reaped yet
    (ProcessStat("S", 9999), Liveness.ENDED),  # the pid was reused by another process
    (ProcessStat("?", None), Liveness.UNKNOWN),  # there, but we may not read it
])
def test_judge_by_pid_and_start_time(seen: ProcessStat | None, expected: Liveness) -> None:
    assert judge(RECORDED, HERE, seen) is expected


@pytest.mark.parametrize("other", [
    ProcessIdentity("elsewhere", 42, "boot-1", "pid:[4026531836]", 1234),  # another host
    ProcessIdentity("box", 42, "boot-2", "pid:[4026531836]", 1234),  # another boot, or a host of the same name
    ProcessIdentity("box", 42, "boot-1", "pid:[4026532000]", 1234),  # another container's pid namespace
    ProcessIdentity("box", 42, None, "pid:[4026531836]", 1234),  # no /proc where it ran
    ProcessIdentity("box", 42, "boot-1", "pid:[4026531836]", None),
])
def test_a_pid_from_another_scope_is_never_judged_dead(other: ProcessIdentity) -> None:
    assert judge(other, HERE, None) is Liveness.UNKNOWN


def test_this_process_is_alive_and_a_reaped_child_is_ended() -> None:
    me = this_process()
    assert me.pid == os.getpid() and me.start_ticks is not None and me.boot_id and me.pid_namespace
    assert judge(me, me, read_stat(me.pid)) is Liveness.ALIVE
    child = subprocess.Popen(["true"])
    child.wait()
    assert read_stat(child.pid) is None
    assert judge(ProcessIdentity(me.host, child.pid, me.boot_id, me.pid_namespace, 1), me, read_stat(child.pid)) \
        is Liveness.ENDED


def test_a_live_pid_with_another_start_time_is_ended() -> None:
    me = this_process()
    assert me.start_ticks is not None
    reused = ProcessIdentity(me.host, me.pid, me.boot_id, me.pid_namespace, me.start_ticks + 1)
    assert judge(reused, me, read_stat(me.pid)) is Liveness.ENDED


def test_workers_by_type_counts_every_type_workers_take() -> None:
    lists = [(), ("video.process",), ("video.process", "audio.extract")]
    assert workers_by_type(lists, ["media.probe"]) == {
        "audio.extract": 2, "media.probe": 1, "video.process": 3, "*": 1}
    assert workers_by_type([], ["video.process"]) == {"video.process": 0, "*": 0}


def test_presence_state_says_why_a_worker_is_stale() -> None:
    assert presence_state("draining", 1.0, 30.0, Liveness.ALIVE) == "draining"
    assert presence_state("running", 1.0, 30.0, Liveness.UNKNOWN) == "running"
    assert presence_state("running", 1.0, 30.0, Liveness.ENDED) == "stale (process ended)"
    assert presence_state("running", 95.0, 30.0, Liveness.UNKNOWN) == "stale (not seen for 1.6m)"


def test_a_worker_is_stale_after_three_missed_renewals_or_a_lease() -> None:
    assert live_seconds(10, 60) == 30
    assert live_seconds(30, 60) == 60
