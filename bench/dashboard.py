"""Dashboard benchmark: the overview and jobs pages with 1,000,000 rows in media_jobs.

    python bench/dashboard.py [--rows 1000000] [--requests 20] [--seconds 10] [--no-baseline]

Uses BENCH_DATABASE_URL or TEST_DATABASE_URL (a server where it may create the database
mw_bench_dashboard), else the embedded PostgreSQL. Fills the table with a month of jobs (six types,
1,000 owners; 90 % completed, 6 % failed, 2 % cancelled, 1.5 % pending, 0.5 % processing), starts
`python worker.py dashboard` on it as a real process, and times whole page loads over HTTP
(query, rendering, transfer): median and p95 of `--requests` loads per page, at most `--seconds`
each. Then, unless --no-baseline, drops the dashboard's five indexes (migration 20261201120000) and
times the same pages again, printing without/with ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds queue.py: put the repository, not bench/, first on the path, so `import queue` is the stdlib's.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import psycopg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

from bench.queue import bench_database  # noqa: E402 (the same database set-up as the queue benchmark)

NAME = "mw_bench_dashboard"
INDEXES = ("media_jobs_created_idx", "media_jobs_status_created_idx", "media_jobs_type_created_idx",
           "media_jobs_status_type_idx", "media_jobs_completed_idx")
FILL = """
insert into public.media_jobs (user_id, type, status, payload, error, errors, progress, stage, attempts,
                               created_at, started_at, completed_at, run_at)
select owner, type, status, jsonb_build_object('n', g), case when status = 'failed' then 'input rejected' end,
       case when status = 'failed' then '[{"attempt": 1, "error": "input rejected"}]'::jsonb else '[]' end,
       case when status = 'completed' then 100 else 0 end, status::text, 1,
       created, created + interval '2 seconds',
       case when status in ('completed', 'failed', 'cancelled')
            then created + (2 + 60 * random()) * interval '1 second' end, created
from (select g,
             ('00000000-0000-4000-8000-' || lpad((g %% 1000)::text, 12, '0'))::uuid as owner,
             (array['video.process', 'video.thumbnails', 'video.clips', 'audio.extract', 'video.hls',
                    'media.probe'])[1 + g %% 6] as type,
             (case when g %% 1000 < 900 then 'completed' when g %% 1000 < 960 then 'failed'
                   when g %% 1000 < 980 then 'cancelled' when g %% 1000 < 995 then 'pending'
                   else 'processing' end)::public.media_job_status as status,
             now() - (%(rows)s - g) * (interval '30 days' / %(rows)s) as created
      from generate_series(1, %(rows)s) g) as jobs
"""


def fill(url: str, rows: int) -> dict[str, str]:
    """Insert the rows (auth.users first: user_id references it); return ids the pages filter by."""
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) select ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid "
                     "from generate_series(0, 999) g on conflict do nothing")
        conn.execute(FILL, {"rows": rows})
        conn.execute("vacuum analyze public.media_jobs")
        job = conn.execute("select id from public.media_jobs where status = 'failed' limit 1").fetchone()
        cursor = conn.execute("select created_at, id from public.media_jobs order by created_at desc, id desc "
                              "offset %s limit 1", (min(5000, rows // 2),)).fetchone()
    assert job and cursor
    print(f"filled {rows:,} rows in {time.monotonic() - started:.0f} s", flush=True)
    return {"job": str(job[0]), "cursor": f"{cursor[0].isoformat()}_{cursor[1]}".replace("+", "%2B")}


def pages(ids: dict[str, str]) -> list[tuple[str, str]]:
    day = "2026-01-01T00:00"
    return [("overview", "/"), ("jobs, no filter", "/jobs"), ("jobs, failed", "/jobs?status=failed"),
            ("jobs, one type", "/jobs?type=video.hls"),
            ("jobs, pending of one type", "/jobs?status=pending&type=media.probe"),
            ("jobs, one owner", "/jobs?owner=00000000-0000-4000-8000-000000000042"),
            ("jobs, a time range", f"/jobs?since={day}&until=2099-01-01T00:00"),
            ("jobs, page 101 (keyset)", f"/jobs?after={ids['cursor']}"),
            ("one job", f"/jobs/{ids['job']}"), ("workers", "/workers"),
            ("retry-failed confirmation", "/actions/retry-failed?type=video.hls")]


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "STORAGE_BACKEND": "local", "DASHBOARD_PORT": str(port),
           "LOG_FORMAT": "json"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "dashboard"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the dashboard did not start")


def time_page(base: str, path: str, requests: int, seconds: float) -> tuple[float, float]:
    """Median and p95 of whole page loads, in ms (one warm-up load first)."""
    urllib.request.urlopen(base + path, timeout=60).read()
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while len(samples) < requests and time.monotonic() < deadline:
        started = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as response:
            response.read()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def measure(url: str, ids: dict[str, str], args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    port = 18090 + os.getpid() % 1000
    proc = serve(url, port)
    try:
        return {label: time_page(f"http://127.0.0.1:{port}", path, args.requests, args.seconds)
                for label, path in pages(ids)}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0, help="time box per page")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without the dashboard's indexes")
    args = parser.parse_args()
    url = bench_database(NAME)
    ids = fill(url, args.rows)
    ours = measure(url, ids, args)
    base: dict[str, tuple[float, float]] = {}
    if not args.no_baseline:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in INDEXES:
                conn.execute(f"drop index public.{name}")
        base = measure(url, ids, args)
    print(f"\n{'page':<28} {'median ms':>10} {'p95 ms':>8}" + ("  without the indexes: median, ratio" if base else ""))
    for label, (median, p95) in ours.items():
        extra = f"  {base[label][0]:10.1f} {base[label][0] / median:6.1f}x" if base else ""
        print(f"{label:<28} {median:10.1f} {p95:8.1f}{extra}")


if __name__ == "__main__":
    main()
