"""Upload throughput and peak memory: our Storage backend vs one raw request vs supabase-py.

Not a test. Starts the local Storage API server (tests/storage_server.py) in its own process,
then runs each method in a fresh process and prints MB/s, peak RSS growth and ratios to raw.

    python bench/upload.py [--sizes-mb 100,1024] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: its queue.py would shadow the stdlib module
MiB = 1024 * 1024
KEY = "service-key"
METHODS = ("raw", "supabase-py", "ours-6mib", "ours-32mib")


def serve() -> None:
    """Child: run the Storage server until stdin closes."""
    from tests.storage_server import StorageServer

    server = StorageServer(KEY).start()
    server.add_bucket("bench")
    print(server.url, flush=True)
    sys.stdin.read()
    server.close()


def upload(method: str, url: str, source: Path) -> None:
    """Child: one upload by `method`; print seconds and peak RSS growth in KiB."""
    import requests
    from storage3 import SyncStorageClient

    from utils.supabase.storage import SupabaseStorage
    from utils.supabase.transfer import TransferLimits
    from utils.supabase.tus import storage_urls

    path, size = f"bench/{method}-{source.name}", source.stat().st_size
    ours = {"ours-6mib": 6 * MiB, "ours-32mib": 32 * MiB}
    storage = SupabaseStorage(storage_urls(url), KEY, TransferLimits(3600, 3, ours.get(method, 6 * MiB), 6 * MiB))
    storage.bucket_rules("bench")
    client = SyncStorageClient(f"{url}/storage/v1/", {"Authorization": f"Bearer {KEY}", "apikey": KEY})
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    if method == "raw":
        with open(source, "rb") as f:
            requests.post(f"{url}/storage/v1/object/{path}", data=f, timeout=(10, 600), headers={
                "Authorization": f"Bearer {KEY}", "Content-Type": "video/mp4", "x-upsert": "true",
                "Content-Length": str(size)}).raise_for_status()
    elif method == "supabase-py":
        with open(source, "rb") as f:
            client.from_("bench").upload(path.split("/", 1)[1], f, {"content-type": "video/mp4", "upsert": "true"})
    else:
        storage.upload_file("bench", path.split("/", 1)[1], source, "video/mp4")
    seconds = time.perf_counter() - started
    print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)


def make_file(directory: Path, size_mb: int) -> Path:
    path = directory / f"{size_mb}mb.mp4"
    with open(path, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(MiB))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", default="100,1024")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    url = server.stdout.readline().strip()  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            for size_mb in (int(s) for s in args.sizes_mb.split(",")):
                report(size_mb, url, make_file(Path(tmp), size_mb), args.repeat)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait()


def report(size_mb: int, url: str, source: Path, repeat: int) -> None:
    results = {}
    for method in METHODS:
        runs = []
        for _ in range(repeat):
            out = subprocess.run([sys.executable, __file__, "--upload", method, url, str(source)], check=True,
                                 capture_output=True, text=True).stdout.split()
            runs.append((float(out[-2]), int(out[-1])))
        seconds, rss_kib = min(r[0] for r in runs), max(r[1] for r in runs)
        results[method] = (source.stat().st_size / seconds / 1e6, rss_kib / 1024)
    print(f"\n{size_mb} MiB file")
    print(f"{'method':<14}{'MB/s':>8}{'x raw':>8}{'peak RSS +MiB':>15}")
    for method, (mbps, rss) in results.items():
        print(f"{method:<14}{mbps:>8.1f}{mbps / results['raw'][0]:>8.2f}{rss:>15.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--upload"]:
        upload(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        main()
