"""Upload throughput and peak memory: our Storage backend vs one raw request (curl) vs supabase-py.

Not a test. By default starts the local Storage API server (tests/storage_server.py) in its own
process, optionally with a delay per request (`--delay-ms`, the server's own cost per request) and
a round trip (`--rtt-ms`: answers arrive that late while the server reads on, as over a network);
`--url` points it at any Storage server instead (the key comes from SUPABASE_SERVICE_ROLE_KEY, the
bucket from `--bucket`, which must accept video/mp4). Our TUS path runs once per chunk size
pipelined (`ours-6mib`, the default) and once one chunk per round trip (`ours-6mib-serial`,
UPLOAD_PIPELINING=false). Each method runs in a fresh process; it prints MB/s, peak RSS growth and
ratios to one raw streamed POST sent by curl beside it (by `requests` where curl is missing).

    python bench/upload.py [--sizes-mb 100,1024] [--repeat 1] [--chunks-mb 6,32] [--delay-ms 0] [--rtt-ms 0] [--mbit 0]
    SUPABASE_SERVICE_ROLE_KEY=... python bench/upload.py --url https://<ref>.storage.supabase.co --bucket b
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: its queue.py would shadow the stdlib module
MiB = 1024 * 1024
KEY = os.environ.get("SUPABASE_SERVICE_ROLE_KEY", "service-key")  # the local server's key when unset


def serve(delay_ms: float, rtt_ms: float, mbit: float) -> None:
    """Child: run the Storage server until stdin closes."""
    from tests.storage_server import StorageServer

    server = StorageServer(KEY, request_delay_s=delay_ms / 1000, round_trip_s=rtt_ms / 1000,
                           bandwidth_bytes_per_s=mbit * 125_000 or None).start()
    server.add_bucket("bench")
    print(server.url, flush=True)
    sys.stdin.read()
    server.close()


def upload(method: str, url: str, bucket: str, source: Path) -> None:
    """Child: one upload by `method`; print seconds and peak RSS growth in KiB."""
    from storage3 import SyncStorageClient

    from utils.supabase.storage import SupabaseStorage
    from utils.supabase.transfer import TransferLimits
    from utils.supabase.tus import storage_urls

    name = f"bench/{method}-{source.name}"
    chunk = int(method.removeprefix("ours-").split("mib")[0]) * MiB if method.startswith("ours-") else 6 * MiB
    limits = TransferLimits(3600, 3, chunk, 6 * MiB, pipelining=not method.endswith("-serial"))
    storage = SupabaseStorage(storage_urls(url), KEY, limits)
    storage.bucket_rules(bucket)
    client = SyncStorageClient(storage.urls.rest + "/", {"Authorization": f"Bearer {KEY}", "apikey": KEY})
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    if method in ("curl", "raw"):
        raw_post(method, f"{storage.urls.rest}/object/{bucket}/{name}", source)
    elif method == "supabase-py":
        with open(source, "rb") as f:
            client.from_(bucket).upload(name, f, {"content-type": "video/mp4", "upsert": "true"})
    else:
        storage.upload_file(bucket, name, source, "video/mp4")
    seconds = time.perf_counter() - started
    print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)


def raw_post(method: str, url: str, source: Path) -> None:
    """One streamed POST of the file with its Content-Length: by curl, or by requests."""
    headers = {"Authorization": f"Bearer {KEY}", "apikey": KEY, "Content-Type": "video/mp4", "x-upsert": "true"}
    if method == "curl":
        argv = ["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "POST", "-T", str(source), url]
        subprocess.run(argv + [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")], check=True)
        return
    import requests

    with open(source, "rb") as f:
        requests.post(url, data=f, timeout=(10, 600), headers={
            **headers, "Content-Length": str(source.stat().st_size)}).raise_for_status()


def make_file(directory: Path, size_mb: int) -> Path:
    path = directory / f"{size_mb}mb.mp4"
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(MiB))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="100,1024")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--chunks-mb", default="6,32", help="our TUS path once per chunk size")
    parser.add_argument("--url", help="a Storage server (SUPABASE_URL form); default: start the local one")
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the local server's delay per request")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="the local server's round trip per answer")
    parser.add_argument("--mbit", type=float, default=0.0, help="the local server's link, Mbit/s (0: no cap)")
    args = parser.parse_args()
    baseline = "curl" if shutil.which("curl") else "raw"
    ours = [f"ours-{mb}mib{way}" for mb in args.chunks_mb.split(",") for way in ("", "-serial")]
    methods = [baseline, "supabase-py", *ours]
    server = None if args.url else subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.delay_ms), str(args.rtt_ms), str(args.mbit)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = args.url or server.stdout.readline().strip()  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            for size_mb in (int(s) for s in args.sizes_mb.split(",")):
                report(size_mb, url, args.bucket, make_file(Path(tmp), size_mb), args.repeat, methods)
    finally:
        if server is not None:
            server.stdin.close()  # type: ignore[union-attr]
            server.wait()


def report(size_mb: int, url: str, bucket: str, source: Path, repeat: int, methods: list[str]) -> None:
    """Run the methods interleaved, `repeat` rounds; print the best MB/s of each and its ratio to the baseline."""
    runs: dict[str, list[tuple[float, int]]] = {method: [] for method in methods}
    for _ in range(repeat):
        for method in methods:
            out = subprocess.run([sys.executable, __file__, "--upload", method, url, bucket, str(source)],
                                 check=True, capture_output=True, text=True).stdout.split()
            runs[method].append((float(out[-2]), int(out[-1])))
    size = source.stat().st_size
    results = {m: (size / min(r[0] for r in rs) / 1e6, max(r[1] for r in rs) / 1024) for m, rs in runs.items()}
    print(f"\n{size_mb} MiB file, best of {repeat}")
    print(f"{'method':<18}{'MB/s':>8}{'x ' + methods[0]:>9}{'peak RSS +MiB':>15}")
    for method, (mbps, rss) in results.items():
        print(f"{method:<18}{mbps:>8.1f}{mbps / results[methods[0]][0]:>9.2f}{rss:>15.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1:2] == ["--upload"]:
        upload(sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    else:
        main()
