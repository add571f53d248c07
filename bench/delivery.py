"""Benchmark delivery: a job whose uploads overlap the encode vs bare ffmpeg vs encode-then-upload.

    python bench/delivery.py [--seconds 60] [--size 1920x1080] [--delays-ms 0,40] [--mbit 0 (uplink cap)]
                             [--types video.hls] [--repeat 1]

For each job type and each per-request delay of the local Storage test server (tests/storage_server.py, in its
own process), prints: bare ffmpeg with the very command the worker ran (captured by a wrapper on FFMPEG_PATH);
bare ffmpeg, then its outputs uploaded one by one (the shape before uploads overlapped the encode); the worker's
whole job (download, probe, encode, verify, upload, through JobRunner with UPLOAD_CONCURRENCY as set), split into
before its ffmpeg, its ffmpeg, and after (what is left to store once ffmpeg has exited); and the ratios, with the
most the overlap could gain ("at most": a job as fast as bare ffmpeg, (ffmpeg then upload) / bare). With
--repeat, the job and bare ffmpeg take turns, and each figure is the median of its runs: on a shared machine the
encode's speed drifts by more than the overlap gains. Needs a PostgreSQL: BENCH_DATABASE_URL or
TEST_DATABASE_URL. Not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: its queue.py would shadow the stdlib module

from bench.recovery import bench_database  # noqa: E402
from utils.storage import Storage  # noqa: E402
from worker.config import Settings, load_settings  # noqa: E402
from worker.control import JobControl  # noqa: E402

KEY = "service-key"
SOURCE = "anonymous/bench/source.mp4"
TYPES = {".ts": "video/mp2t", ".m3u8": "application/vnd.apple.mpegurl", ".mp4": "video/mp4", ".jpg": "image/jpeg",
         ".m4a": "audio/mp4", ".json": "application/json", ".vtt": "text/vtt"}
PAYLOADS: dict[str, dict[str, Any]] = {"video.hls": {}, "video.process": {"thumbnails": 3}}
# Records the worker's ffmpeg command and the folders its handler made, then runs it unchanged.
WRAPPER = """#!/bin/bash
printf '%s\\0' "$@" > {argv}
find {temp} -mindepth 1 -type d -printf '%P\\0' > {dirs}
exec ffmpeg "$@"
"""


def serve(delay_ms: float, mbit: float) -> None:
    """Child: run the Storage server with this network until stdin closes."""
    from tests.storage_link import Link
    from tests.storage_server import StorageServer

    server = StorageServer(KEY, request_delay_s=delay_ms / 1000,
                           bandwidth_bytes_per_s=mbit * 125_000 if mbit else None)
    # The cap models the worker's uplink: the job's input download, which bare ffmpeg does not make,
    # must not be what the comparison measures.
    server.downlink = Link(lambda: None, server.stop_event)
    server.start()
    server.add_bucket("media-uploads")
    server.add_bucket("media-outputs", 2 * 1024**3, sorted(set(TYPES.values())))
    print(server.url, flush=True)
    sys.stdin.read()
    server.close()


def start_server(delay_ms: float, mbit: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(delay_ms), str(mbit)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


class TimedControl(JobControl):
    """A job's control that notes when each stage began: "verifying" begins when the handler's ffmpeg has exited."""

    def __init__(self) -> None:
        super().__init__()
        self.began: dict[str, float] = {}

    def set_stage(self, stage: str, progress: float | None = None) -> None:
        self.began.setdefault(stage, time.monotonic())
        super().set_stage(stage, progress)


def make_source(path: Path, seconds: int, size: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)


class Bench:
    """One Storage server (one network), a database, and a place for the worker's and the bare runs' files."""

    def __init__(self, url: str, db_url: str, root: Path, source: Path, concurrency: int) -> None:
        self.root, self.source, self.wrapper = root, source, root / "ffmpeg"
        self.temp = root / "work"
        self.wrapper.write_text(WRAPPER.format(argv=root / "argv", dirs=root / "dirs", temp=self.temp))
        self.wrapper.chmod(0o755)
        self.settings: Settings = load_settings({
            "SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": KEY, "DATABASE_URL": db_url, "FFMPEG_PATH": str(self.wrapper),
            "FFMPEG_HWACCEL": "none", "WORKER_TEMP_DIR": str(self.temp), "UPLOAD_CONCURRENCY": str(concurrency),
            "LOG_LEVEL": "warning"}, env_file=None)

    def storage(self) -> Storage:
        from utils.supabase.storage import open_supabase_storage

        return open_supabase_storage(self.settings)

    def job(self, job_type: str) -> dict[str, float]:
        """Seconds of the worker's whole job, from claimed to completed, and of its part before, in and after ffmpeg."""
        from worker.control import Heartbeat
        from worker.db import JobStore
        from worker.outcome import Completed
        from worker.runner import JobRunner
        from worker.runtime import media_settings

        self.storage().upload_file("media-uploads", SOURCE, self.source, "video/mp4")
        store = JobStore(self.settings.database_url or "", "bench:delivery/0", lease_seconds=120)
        heartbeat = Heartbeat(store, 1.0, 120, name="heartbeat-bench")
        heartbeat.start()
        try:
            runner = JobRunner(store, self.storage(), self.settings, media_settings(self.settings), heartbeat,
                               storage_factory=self.storage)
            runner.storages.take(self.settings.upload_concurrency)  # a running worker made these for its first job
            store.insert_job(job_type, {"input": {"bucket": "media-uploads", "path": SOURCE}, **PAYLOADS[job_type]})
            job = store.claim_next_job((job_type,))
            assert job is not None
            control = TimedControl()
            started = time.monotonic()
            outcome = runner.run(job, control, {})
            ended = time.monotonic()
        finally:
            heartbeat.close()
            store.close()
        assert isinstance(outcome, Completed), outcome
        encoding, encoded = control.began["processing"], control.began["verifying"]
        return {"job": ended - started, "before": encoding - started, "ffmpeg": encoded - encoding, "after": ended - encoded}

    def bare(self, job_type: str) -> tuple[float, Path]:
        """Seconds of the command the last job ran, run again by hand; and the folder of its outputs."""
        argv = (self.root / "argv").read_bytes().decode().split("\0")[:-1]
        dirs = (self.root / "dirs").read_bytes().decode().split("\0")[:-1]
        bare = self.root / "bare" / job_type
        shutil.rmtree(bare, ignore_errors=True)
        for folder in dirs:
            (bare / folder).mkdir(parents=True, exist_ok=True)
        job_dir = bare / min(dirs, key=len)
        shutil.copyfile(self.source, job_dir / "input")
        argv = [arg.replace(str(self.temp), str(bare)) for arg in argv]
        at = argv.index("-progress")
        del argv[at:at + 2]  # nobody reads its progress here
        started = time.monotonic()
        subprocess.run(["ffmpeg", *argv], check=True, stdin=subprocess.DEVNULL)
        return time.monotonic() - started, job_dir

    def upload_one_by_one(self, folder: Path) -> tuple[float, int, int]:
        """Seconds to upload every output in `folder` one after another; and the files and bytes."""
        storage = self.storage()
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "input")
        started = time.monotonic()
        for path in files:
            storage.upload_file("media-outputs", f"anonymous/bare/{path.relative_to(folder)}", path, TYPES[path.suffix])
        return time.monotonic() - started, len(files), sum(p.stat().st_size for p in files)


def run_type(bench: Bench, job_type: str, repeat: int) -> dict[str, float]:
    """Medians over `repeat` turns of: the job, bare ffmpeg with its command, and uploading bare's outputs."""
    runs: list[dict[str, float]] = []
    for _ in range(repeat):
        job = bench.job(job_type)
        seconds, folder = bench.bare(job_type)
        upload, files, size = bench.upload_one_by_one(folder)
        runs.append({**job, "bare": seconds, "upload": upload, "files": files, "mib": size / 2**20})
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    median["then_upload"] = median["bare"] + median["upload"]
    median["spread"] = max(run["job"] / run["bare"] for run in runs) - min(run["job"] / run["bare"] for run in runs)
    return median


def report(rows: list[tuple[str, float, dict[str, float]]]) -> None:
    print(f"{'type':<14}{'delay':>7}{'files':>7}{'MiB':>8}{'bare s':>9}{'enc+upl s':>11}{'job s':>8}"
          f"{'(before':>9}{'ffmpeg':>8}{'after)':>8}{'job/bare':>10}{'±':>7}{'(enc+upl)/job':>15}{'at most':>9}")
    for job_type, delay, r in rows:
        print(f"{job_type:<14}{delay:>5.0f}ms{r['files']:>7.0f}{r['mib']:>8.1f}{r['bare']:>9.2f}{r['then_upload']:>11.2f}"
              f"{r['job']:>8.2f}{r['before']:>9.2f}{r['ffmpeg']:>8.2f}{r['after']:>8.2f}{r['job'] / r['bare']:>10.3f}"
              f"{r['spread'] / 2:>7.3f}{r['then_upload'] / r['job']:>15.2f}{r['then_upload'] / r['bare']:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--delays-ms", default="0,40")
    parser.add_argument("--mbit", type=float, default=0, help="cap on what the worker sends (uploads; 0: none)")
    parser.add_argument("--concurrency", type=int, default=4, help="UPLOAD_CONCURRENCY")
    parser.add_argument("--types", default="video.hls,video.process")
    parser.add_argument("--repeat", type=int, default=1, help="turns of job and bare ffmpeg; medians are printed")
    args = parser.parse_args()
    from handlers import load_handlers
    from worker.logs import configure_logging

    configure_logging("warning", "console")
    load_handlers()
    db_url = bench_database("mw_bench_delivery")
    root = Path(tempfile.mkdtemp(prefix="mw-bench-delivery-"))
    rows: list[tuple[str, float, dict[str, float]]] = []
    try:
        make_source(root / "source.mp4", args.seconds, args.size)
        for delay in (float(d) for d in args.delays_ms.split(",")):
            proc, url = start_server(delay, args.mbit)
            try:
                bench = Bench(url, db_url, root, root / "source.mp4", args.concurrency)
                rows += [(t, delay, run_type(bench, t, args.repeat)) for t in args.types.split(",")]
            finally:
                proc.communicate("")
        bandwidth = f"{args.mbit:g} Mbit/s" if args.mbit else "uncapped"
        print(f"source: {args.seconds} s {args.size}, UPLOAD_CONCURRENCY={args.concurrency}, bandwidth {bandwidth}; "
              f"{os.cpu_count()} CPUs; medians of {args.repeat} turn(s), ± half the spread of job/bare")
        report(rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(float(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
