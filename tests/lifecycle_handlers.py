"""Test-only job types, loaded into real workers with WORKER_HANDLER_MODULES=tests.lifecycle_handlers.

- test.slow: a real, supervised ffmpeg run that lasts `seconds` (-re), writing slow.mp4.
- test.record: records its payload's `n` in the table test_executions (exactly-once checks).
- test.rendezvous: records like test.record, then holds its slot until `workers` distinct worker
  processes have recorded a job: with as many of these jobs as the workers have slots, every worker
  must take some, whatever the scheduling.
- test.flaky: always fails with a transient error.
- test.flaky_once: fails with a transient error on its first attempt and succeeds on the next, each
  once the row shows it in the 'processing' stage (so that the stage history has it).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from pydantic import Field

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, Payload, TaskContext
from handlers.errors import PermanentJobError, TransientJobError
from utils.ffmpeg_supervisor import run_ffmpeg


class SlowPayload(Payload):
    seconds: float = Field(default=3.0, gt=0, le=120)


def run_slow(payload: SlowPayload, ctx: TaskContext) -> HandlerResult:
    out = ctx.work_dir / "slow.mp4"
    argv = [ctx.media.ffmpeg_path, "-hide_banner", "-v", "error", "-re", "-f", "lavfi",
            "-i", f"testsrc=size=64x48:rate=10:duration={payload.seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-y", str(out)]
    run_ffmpeg(argv, duration=payload.seconds, limits=ctx.media.run_limits(payload.seconds),
               on_progress=ctx.report_progress, should_stop=ctx.should_stop)
    return HandlerResult([Artifact("video", "slow.mp4", out, "video/mp4")])


class RecordPayload(Payload):
    n: int


_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    """This slot thread's own connection to the test database."""
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return conn


def run_record(payload: RecordPayload, ctx: TaskContext) -> HandlerResult:
    _connection().execute("insert into test_executions (n, pid) values (%s, %s)", (payload.n, os.getpid()))
    return HandlerResult([])


class RendezvousPayload(RecordPayload):
    workers: int = Field(gt=0)


RENDEZVOUS_GIVE_UP_SECONDS = 120  # a test's failure, not a pace: it names the workers that never came


def run_rendezvous(payload: RendezvousPayload, ctx: TaskContext) -> HandlerResult:
    run_record(payload, ctx)
    give_up = time.monotonic() + RENDEZVOUS_GIVE_UP_SECONDS
    while True:
        row = _connection().execute("select count(distinct pid) from test_executions").fetchone()
        came = int(row[0]) if row else 0
        if came >= payload.workers:
            return HandlerResult([])
        if ctx.should_stop() or time.monotonic() > give_up:
            raise PermanentJobError(f"only {came} of {payload.workers} workers ever ran a job")
        time.sleep(0.05)


class FlakyPayload(Payload):
    message: str = "storage is down (test)"


def run_flaky(payload: FlakyPayload, ctx: TaskContext) -> HandlerResult:
    raise TransientJobError(payload.message)


class FlakyOncePayload(Payload):
    marker: str  # a file the first attempt creates: the next one finds it and succeeds


def run_flaky_once(payload: FlakyOncePayload, ctx: TaskContext) -> HandlerResult:
    give_up = time.monotonic() + RENDEZVOUS_GIVE_UP_SECONDS
    # Wait for the heartbeat to write this stage, instead of guessing how long that takes.
    while _connection().execute("select 1 from public.media_jobs where payload ->> 'marker' = %s "
                                "and stage = 'processing'", (payload.marker,)).fetchone() is None:
        if ctx.should_stop() or time.monotonic() > give_up:
            raise PermanentJobError("the 'processing' stage was never written")
        time.sleep(0.05)
    marker = Path(payload.marker)
    if not marker.exists():
        marker.touch()
        raise TransientJobError("storage is down (test, first attempt)")
    return HandlerResult([])


register(Handler("test.slow", SlowPayload, run_slow))
register(Handler("test.record", RecordPayload, run_record))
register(Handler("test.rendezvous", RendezvousPayload, run_rendezvous))
register(Handler("test.flaky", FlakyPayload, run_flaky))
register(Handler("test.flaky_once", FlakyOncePayload, run_flaky_once))
