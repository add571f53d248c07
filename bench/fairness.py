"""Fairness benchmark: one owner's burst, then other owners' single jobs, fair claim against FIFO.

    python bench/fairness.py [--burst 50] [--others 10] [--slots 2] [--seconds 0.05] [--cap N]

Owner A inserts `burst` jobs at once; right after, `others` owners insert one job each. `slots`
claimers (each its own connection, as separate workers) run every job for `seconds`, then
complete it and claim the next in the same statement. With the worker's claim (JobStore:
CLAIM_JOB, then COMPLETE_AND_CLAIM) and with the plain FIFO SKIP LOCKED claim
(`priority desc, run_at, created_at`, bench/queue.py's baseline), it prints the other owners'
wait from insert to start (p50 and max) and when A's burst is done. Same database server as
bench/queue.py (BENCH_DATABASE_URL or TEST_DATABASE_URL, else the embedded PostgreSQL).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

from bench.queue import RAW_CLAIM, RAW_COMPLETE, bench_database  # noqa: E402
from worker.db import Completion, JobStore  # noqa: E402

BURST_OWNER = uuid.UUID("a0000000-0000-4000-8000-00000000000a")

# A claim loop: run one slot's jobs until the queue is empty; calls started(job id) at each start.
Loop = Callable[[str, str, float, Callable[[Any], None]], None]


def fair_loop(url: str, slot: str, seconds: float, started: Callable[[Any], None], cap: int | None = None) -> None:
    """Until no job is pending: a slot with nothing to claim (the cap, or a claimer passing an owner
    another one holds) looks again after a tenth of a job, as a worker's next round would."""
    store = JobStore(url, slot, 60)
    job = store.claim_next_job(max_running_per_user=cap)
    while job is not None or store.queue_depth():
        if job is None:
            time.sleep(seconds / 10)
            job = store.claim_next_job(max_running_per_user=cap)
            continue
        started(job.id)
        time.sleep(seconds)
        job = store.complete_and_claim([Completion(job.id, slot, {})], [slot],
                                       max_running_per_user=cap)[1].get(slot)
    store.close()


def fifo_loop(url: str, slot: str, seconds: float, started: Callable[[Any], None]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while (row := conn.execute(RAW_CLAIM).fetchone()) is not None:
            started(row[0])
            time.sleep(seconds)
            conn.execute(RAW_COMPLETE, (row[0],))


def load(url: str, burst: int, others: int) -> tuple[set[Any], dict[Any, float]]:
    """A's burst, then one job per other owner; returns A's job ids and the others' insert times."""
    owners = [uuid.UUID(int=n + 1) for n in range(others)]
    inserted: dict[Any, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("truncate public.media_jobs cascade")
        conn.execute("insert into auth.users (id, email) select u, u::text || '@bench' from unnest(%s::uuid[]) u "
                     "on conflict do nothing", ([BURST_OWNER, *owners],))
        rows = conn.execute("insert into public.media_jobs (user_id, type, payload) select %s, 'bench.noop', "
                            "'{}'::jsonb from generate_series(1, %s) returning id", (BURST_OWNER, burst)).fetchall()
        for owner in owners:
            row = conn.execute("insert into public.media_jobs (user_id, type, payload) values (%s, 'bench.noop', "
                               "'{}'::jsonb) returning id", (owner,)).fetchone()
            assert row is not None
            inserted[row[0]] = time.monotonic()
    return {r[0] for r in rows}, inserted


def run(url: str, loop: Loop, args: argparse.Namespace) -> tuple[float, float, float]:
    """Other owners' wait p50 and max, and the time until A's burst has all started, in seconds."""
    burst_jobs, inserted = load(url, args.burst, args.others)
    began, starts, lock = time.monotonic(), {}, threading.Lock()

    def started(job_id: Any) -> None:
        with lock:
            starts[job_id] = time.monotonic()

    threads = [threading.Thread(target=loop, args=(url, f"bench:fair/{i}", args.seconds, started))
               for i in range(args.slots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waits = [starts[job] - at for job, at in inserted.items()]
    return statistics.median(waits), max(waits), max(starts[job] for job in burst_jobs) - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--others", type=int, default=10)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.05, help="how long each job runs")
    parser.add_argument("--cap", type=int, default=None, help="also run the fair claim under this per-owner cap")
    args = parser.parse_args()
    url = bench_database("mw_bench_fair")
    print(f"fairness benchmark: a burst of {args.burst} jobs of one owner, then {args.others} owners with one job "
          f"each; {args.slots} slots, {args.seconds * 1000:.0f} ms per job\n")
    print(f"{'claim':<22} {'others wait p50':>16} {'others wait max':>16} {'burst all started':>18}")
    sides: list[tuple[str, Loop]] = [("FIFO (raw SQL)", fifo_loop), ("fair (the worker's)", fair_loop)]
    if args.cap:
        sides.append((f"fair, cap {args.cap}",
                      lambda url, slot, seconds, started: fair_loop(url, slot, seconds, started, args.cap)))
    for name, loop in sides:
        p50, worst, burst_done = run(url, loop, args)
        print(f"{name:<22} {p50 * 1000:13.0f} ms {worst * 1000:13.0f} ms {burst_done * 1000:15.0f} ms")


if __name__ == "__main__":
    main()
