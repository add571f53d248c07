"""Uploads while encoding: a real runner, real ffmpeg and the Storage test server over real sockets.

ffmpeg runs through a wrapper that reads its input at real-time pace (a real encode lasts minutes; this one must
last long enough for segments to come out one by one) and, when ffmpeg exits, lists what the server has stored
by then. That list against the server's later state gives the order of events without a clock.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_delivery
from tests.integration.test_delivery import Runner, claim, settings_for, upload_threads, uploads_of, wait_for
from tests.storage_server import StorageServer
from tests.support.media import make_clip, sha256
from worker.db import JobStore
from worker.outcome import Cancelled, Completed, Outcome

# The delivery tests' fixtures: a Storage test server, a job store, runners closed after the test.
server, store, runners = test_delivery.server, test_delivery.store, test_delivery.runners

WRAPPER = """#!/bin/bash
ffmpeg -readrate 1 "$@"
status=$?
find {objects} -type f -printf '%P\\n' > {listing}.tmp
mv {listing}.tmp {listing}
exit $status
"""


class PacedFFmpeg:
    """FFMPEG_PATH for a test: real ffmpeg at real-time pace; `stored_at_exit` is what the server held as it exited."""

    def __init__(self, tmp_path: Path, server: StorageServer) -> None:
        self.path, self.listing = tmp_path / "ffmpeg", tmp_path / "stored-at-exit.txt"
        self.path.write_text(WRAPPER.format(objects=server.root / "objects", listing=self.listing))
        self.path.chmod(0o755)

    def stored_at_exit(self) -> list[str]:
        return self.listing.read_text().split() if self.listing.exists() else []


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", seconds=5, size="320x240")


def hls_job(store: JobStore, server: StorageServer, clip: Path) -> Any:
    server.put_object("media-uploads", "anonymous/in/clip.mp4", clip)
    return claim(store, "video.hls", {"input": {"bucket": "media-uploads", "path": "anonymous/in/clip.mp4"},
                                      "heights": [120, 240], "segment_seconds": 1})


def hls_settings(tmp_path: Path, server: StorageServer, ffmpeg: PacedFFmpeg, **env: Any) -> Any:
    return settings_for(tmp_path, server, FFMPEG_PATH=ffmpeg.path, FFMPEG_HWACCEL="none", VIDEO_PRESET="ultrafast",
                        **env)


def check_stored_bytes(server: StorageServer, outcome: Completed) -> list[str]:
    """Every output and every manifest entry matches the stored bytes; return the manifest's object paths."""
    for output in outcome.result["outputs"]:
        assert output["sha256"] == sha256(server.object_file("media-outputs", output["path"]))
    (entry,) = [o for o in outcome.result["outputs"] if o["kind"] == "hls_manifest"]
    manifest = json.loads(server.object_file("media-outputs", entry["path"]).read_bytes())
    paths = []
    for file in manifest["files"]:
        stored = server.object_file("media-outputs", manifest["folder"] + file["name"])
        assert (file["size"], file["sha256"]) == (stored.stat().st_size, sha256(stored))
        paths.append(manifest["folder"] + file["name"])
    return paths


@pytest.mark.parametrize("concurrency", [1, 3])
def test_segments_are_stored_while_ffmpeg_still_runs_and_match_the_result(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner], clip: Path,
        concurrency: int) -> None:
    ffmpeg = PacedFFmpeg(tmp_path, server)
    runners.append(Runner(store, hls_settings(tmp_path, server, ffmpeg, UPLOAD_CONCURRENCY=concurrency)))
    job = hls_job(store, server, clip)
    outcome = runners[0].run(job)
    assert isinstance(outcome, Completed), outcome
    paths = check_stored_bytes(server, outcome)
    at_exit = {p.removeprefix("media-outputs/") for p in ffmpeg.stored_at_exit()}
    segments = [p for p in paths if p.endswith(".ts")]
    assert len(segments) == 10 and at_exit & set(segments), "segments were stored before ffmpeg exited"
    assert not at_exit & {p for p in paths if p.endswith(".m3u8")}, "playlists are stored once ffmpeg is done"
    assert not [p for p in paths if p.endswith(".tmp")]
    assert server.max_in_flight <= concurrency
    assert not upload_threads()


def first_patched_path(server: StorageServer) -> str:
    """The object path of the upload whose PATCH came first."""
    (method, url, *_), = [entry for entry in server.log if entry[0] == "PATCH"][:1]
    return server.uploads[url.rsplit("/", 1)[1]].path


def test_a_reset_mid_job_is_retried_while_the_encode_goes_on(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner], clip: Path) -> None:
    ffmpeg = PacedFFmpeg(tmp_path, server)
    server.faults.drop_patch_after = [100]  # the first segment's upload loses its connection mid-body
    runners.append(Runner(store, hls_settings(tmp_path, server, ffmpeg, UPLOAD_CONCURRENCY=2,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    outcome = runners[0].run(hls_job(store, server, clip))
    assert isinstance(outcome, Completed), outcome
    assert not server.faults.drop_patch_after, "the reset happened"
    check_stored_bytes(server, outcome)
    first = first_patched_path(server)
    assert first.endswith(".ts")
    assert first in {p.removeprefix("media-outputs/") for p in ffmpeg.stored_at_exit()}, \
        "the reset segment was stored again before ffmpeg exited"


def ffmpeg_running_in(work_root: Path) -> list[int]:
    """Pids of processes whose command line names a path under work_root."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(work_root).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def test_a_cancel_during_an_overlapped_upload_stops_the_encode_and_every_upload(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner], clip: Path) -> None:
    ffmpeg = PacedFFmpeg(tmp_path, server)
    server.faults.patch_delay_seconds = 0.5  # each chunk of a segment takes a while to arrive
    runners.append(Runner(store, hls_settings(tmp_path, server, ffmpeg, UPLOAD_CONCURRENCY=2,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    job = hls_job(store, server, clip)
    ended: list[Outcome] = []
    running = threading.Thread(target=lambda: ended.append(runners[0].run(job)))
    running.start()
    try:
        wait_for(lambda: any(u.path.endswith(".ts") for u in uploads_of(server)), "a segment upload under way")
        assert not ffmpeg.listing.exists(), "ffmpeg still runs"
        store.request_cancel(job.id)
    finally:
        running.join(timeout=60)
    assert ended == [Cancelled()]
    assert not upload_threads() and not [t for t in threading.enumerate() if t.name == "live-outputs"]
    assert not ffmpeg_running_in(tmp_path / "work")
    assert not ffmpeg.listing.exists(), "ffmpeg was killed, not left to finish"
    assert not any(p.endswith(".tmp") for p in map(str, (server.root / "objects").rglob("*")))
