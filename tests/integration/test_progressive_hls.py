"""Progressive HLS (`progressive: true`): the master plays over HTTP while ffmpeg still encodes; the stored live
playlists are EVENT, name only stored segments and carry a short cache-control; the final VOD playlists replace
them. Real runner, real ffmpeg at real-time pace (test_delivery_overlap.PacedFFmpeg), the Storage test server."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from tests.integration import test_delivery
from tests.integration.test_delivery import KEY, Runner, claim, wait_for
from tests.integration.test_delivery_overlap import PacedFFmpeg, check_stored_bytes, hls_settings
from tests.storage_server import StorageServer
from tests.support.media import make_clip
from worker.db import Completion, JobStore
from worker.outcome import Completed, Outcome

server, store, runners = test_delivery.server, test_delivery.store, test_delivery.runners
RENDITIONS = ("120p", "240p")


def object_url(server: StorageServer, path: str) -> str:
    return f"{server.url}/storage/v1/object/authenticated/media-outputs/{path}"


def fetch(server: StorageServer, path: str) -> tuple[str, str]:
    """The stored object's text and the Cache-Control it is served with."""
    resp = requests.get(object_url(server, path), headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    resp.raise_for_status()
    return resp.text, resp.headers["Cache-Control"]


def ffprobe_streams(server: StorageServer, path: str) -> list[dict[str, Any]]:
    """What ffprobe reads from the master over HTTP, as a player would (renditions and segments fetched too)."""
    done = subprocess.run(["ffprobe", "-v", "error", "-headers", f"Authorization: Bearer {KEY}\r\n",
                           "-show_streams", "-of", "json", object_url(server, path)],
                          capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout)["streams"])


def check_live_playlist(server: StorageServer, folder: str, rendition: str) -> None:
    text, cache = fetch(server, f"{folder}/hls/{rendition}/index.m3u8")
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text
    segments = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert segments, text
    for segment in segments:  # each was stored before the playlist that names it
        assert server.object_file("media-outputs", f"{folder}/hls/{rendition}/{segment}").is_file()
    assert cache == "max-age=1"


def progressive_job(store: JobStore, server: StorageServer, tmp_path: Path) -> Any:
    server.put_object("media-uploads", "anonymous/in/clip.mp4", make_clip(tmp_path / "clip.mp4", seconds=6,
                                                                          size="320x240"))
    return claim(store, "video.hls", {"input": {"bucket": "media-uploads", "path": "anonymous/in/clip.mp4"},
                                      "heights": [120, 240], "segment_seconds": 1, "progressive": True})


def test_progressive_hls_plays_while_ffmpeg_runs_and_ends_as_vod(
        store: JobStore, server: StorageServer, tmp_path: Path, runners: list[Runner]) -> None:
    ffmpeg = PacedFFmpeg(tmp_path, server)
    # Every file goes up in PATCHes that each take a while, so segments lag behind ffmpeg and a playlist that named
    # one ffmpeg has written but Storage does not hold yet would be seen.
    server.faults.patch_delay_seconds = 0.3
    runners.append(Runner(store, hls_settings(tmp_path, server, ffmpeg, UPLOAD_CONCURRENCY=2,
                                              UPLOAD_RESUMABLE_THRESHOLD_MB=0)))
    job = progressive_job(store, server, tmp_path)
    folder = f"{job.owner_folder}/{job.id}"
    ended: list[Outcome] = []
    running = threading.Thread(target=lambda: ended.append(runners[0].run(job)))
    running.start()
    try:
        wait_for(lambda: server.object_file("media-outputs", f"{folder}/hls/master.m3u8").is_file(), "the master")
        streams = ffprobe_streams(server, f"{folder}/hls/master.m3u8")
        for rendition in RENDITIONS:
            check_live_playlist(server, folder, rendition)
        assert fetch(server, f"{folder}/hls/master.m3u8")[1] == "max-age=1"
        wait_for(lambda: (store.get_job(job.id) or job).stage == "playable", "the row's stage 'playable'")
        assert not ffmpeg.listing.exists(), "all of this happened while ffmpeg still ran"
    finally:
        running.join(timeout=120)
    assert {s["codec_type"] for s in streams} >= {"video", "audio"}
    (outcome,) = ended
    assert isinstance(outcome, Completed), outcome
    check_stored_bytes(server, outcome)
    for rendition in RENDITIONS:
        text, cache = fetch(server, f"{folder}/hls/{rendition}/index.m3u8")
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        assert cache == "max-age=3600"
    assert fetch(server, f"{folder}/hls/master.m3u8")[1] == "max-age=3600"
    store.complete_and_claim([Completion(job.id, store.worker_id, outcome.result)], [])
    row = store.get_job(job.id)
    assert row is not None and row.completed_at is not None
    assert datetime.fromisoformat(outcome.result["metadata"]["playable_at"]) < row.completed_at
