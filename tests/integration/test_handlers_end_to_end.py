"""Every job type through a real worker process and local storage, on awkward and hostile inputs.

One worker serves the whole module (starting one per test would dominate the run time on 2 cores);
each test inserts its jobs and reads the rows and stored files back.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import create_database, drop_database
from tests.support.media import ffprobe_json
from tests.support.media_inputs import generate_inputs
from tests.support.workers import insert_job, put_local_object, start_worker, wait_for_status, worker_env

pytestmark = pytest.mark.slow


@dataclass
class LiveWorker:
    db_url: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[str]

    def submit(self, job_type: str, source: Path, **payload: Any) -> dict[str, Any]:
        """Upload `source` as the owner would, insert a job, and wait for its final row."""
        path = f"anonymous/in/{source.name}"
        put_local_object(self.data_dir, "media-uploads", path, source)
        job = insert_job(self.db_url, job_type, {"input": {"bucket": "media-uploads", "path": path}, **payload})
        row = wait_for_status(self.db_url, job, {"completed", "failed"}, timeout=90)
        assert self.proc.poll() is None, f"worker died:\n{self.log.read_text()}"
        return row

    def stored(self, output: dict[str, Any]) -> Path:
        return self.data_dir / "storage" / output["bucket"] / output["path"]


@pytest.fixture(scope="module")
def inputs(media_dir: Path) -> dict[str, Path]:
    return generate_inputs(media_dir / "inputs")


@pytest.fixture(scope="module")
def worker(pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWorker]:
    name = f"mwt_handlers_{id(tmp_path_factory)}"
    db_url = create_database(pg_server_url, name, template=template_db)
    data_dir = tmp_path_factory.mktemp("handlers-data")
    env = worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.custom_handler", MEDIA_MAX_PIXELS=1_000_000,
                     MEDIA_MAX_DURATION_SECONDS=20, MEDIA_MAX_STREAMS=4, VIDEO_PRESET="ultrafast", FFMPEG_HWACCEL="auto")
    log = data_dir / "worker.log"
    proc = start_worker(env, log_path=log)
    try:
        yield LiveWorker(db_url, data_dir, log, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        drop_database(pg_server_url, name)


def outputs_by_name(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert row["status"] == "completed", row["error"]
    return {o["path"].split("/", 2)[2]: o for o in row["result"]["outputs"]}


def streams(path: Path) -> dict[str, dict[str, Any]]:
    return {s["codec_type"]: s for s in ffprobe_json(path)["streams"]}


def assert_web_mp4(path: Path, size: tuple[int, int], audio: bool) -> None:
    found = streams(path)
    video = found["video"]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == size
    assert not video.get("side_data_list") and "rotate" not in video.get("tags", {}), "rotation left behind"
    assert ("audio" in found) == audio


def test_video_process_writes_mp4_poster_thumbnails_and_m4a(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.process", inputs["landscape"], thumbnails=4, audio=True)
    outs = outputs_by_name(row)
    assert set(outs) == {"video.mp4", "poster.jpg", "audio.m4a",
                         *(f"thumbnails/thumb_{i:03d}.jpg" for i in range(1, 5))}
    assert_web_mp4(worker.stored(outs["video.mp4"]), (320, 240), audio=True)
    assert streams(worker.stored(outs["thumbnails/thumb_001.jpg"]))["video"]["width"] == 320
    audio = ffprobe_json(worker.stored(outs["audio.m4a"]))
    assert [s["codec_name"] for s in audio["streams"]] == ["aac"]
    assert outs["audio.m4a"]["content_type"] == "audio/mp4"
    assert row["result"]["metadata"]["ffmpeg_path"] == "cpu"


@pytest.mark.parametrize(("name", "size", "audio"), [
    ("portrait", (240, 320), True),   # rotate=90 applied: display size, no rotation left
    ("odd", (320, 240), True),        # 321x241 4:4:4 becomes even 4:2:0
    ("vfr", (160, 120), False),
    ("no_audio", (160, 120), False),
    ("hevc10", (160, 120), False),    # 10-bit HEVC becomes 8-bit yuv420p H.264
    ("one_frame", (160, 120), False),
])
def test_video_process_handles_awkward_inputs(worker: LiveWorker, inputs: dict[str, Path], name: str,
                                              size: tuple[int, int], audio: bool) -> None:
    row = worker.submit("video.process", inputs[name], thumbnails=2)
    outs = outputs_by_name(row)
    assert_web_mp4(worker.stored(outs["video.mp4"]), size, audio)
    poster = streams(worker.stored(outs["poster.jpg"]))["video"]
    assert (poster["width"], poster["height"]) == size
    assert any(n.startswith("thumbnails/") for n in outs)


TONEMAP_MIN_SHIFT = 4.0  # mean luma, 8-bit scale: what tone-mapping must move a frame by


def mean_luma(path: Path, frame_filter: str = "null") -> float:
    """Average Y (8-bit scale) of the first frame, after `frame_filter`."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-vf",
                          f"{frame_filter},format=yuv420p,signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1].split("=")[1])


@pytest.mark.parametrize(("name", "transfer"), [("hdr_pq", "PQ"), ("hdr_hlg", "HLG"), ("hdr_pq_untagged", "PQ")])
def test_hdr_video_is_tone_mapped_to_sdr(worker: LiveWorker, inputs: dict[str, Path], name: str,
                                         transfer: str) -> None:
    row = worker.submit("video.process", inputs[name], thumbnails=1)
    outs = outputs_by_name(row)
    assert row["result"]["metadata"]["tonemapped_from"] == transfer
    assert row["result"]["metadata"]["video"]["hdr"] == transfer
    video = streams(worker.stored(outs["video.mp4"]))["video"]
    assert (video["pix_fmt"], video["color_transfer"], video["color_primaries"]) == ("yuv420p", "bt709", "bt709")
    # A plain 10- to 8-bit conversion keeps the HDR code values (within 1 of `naive`): brighter,
    # washed-out pictures. Tone-mapping these mid-grey test frames moved them 8-9 (Debian's ffmpeg 5.1.9).
    naive = mean_luma(inputs[name])
    assert abs(mean_luma(worker.stored(outs["video.mp4"])) - naive) > TONEMAP_MIN_SHIFT
    assert abs(mean_luma(worker.stored(outs["poster.jpg"])) - naive) > TONEMAP_MIN_SHIFT


@pytest.mark.parametrize(("job_type", "payload", "output"), [
    ("video.clips", {"segments": [{"start": 0, "end": 0.5}]}, "clips/clip_01.mp4"),
    ("video.hls", {"heights": [120]}, "hls/120p/index.m3u8"),
    ("video.thumbnails", {"count": 1}, "thumbnails/thumb_001.jpg"),
])
def test_hdr_clips_hls_and_thumbnails_are_tone_mapped(worker: LiveWorker, inputs: dict[str, Path], job_type: str,
                                                      payload: dict[str, Any], output: str) -> None:
    row = worker.submit(job_type, inputs["hdr_pq"], **payload)
    outs = outputs_by_name(row)
    assert row["result"]["metadata"]["tonemapped_from"] == "PQ"
    stored = worker.stored(outs[output])
    if output.endswith(".jpg"):
        assert abs(mean_luma(stored) - mean_luma(inputs["hdr_pq"])) > TONEMAP_MIN_SHIFT
    else:
        video = streams(stored)["video"]
        assert (video["color_transfer"], video["color_primaries"]) == ("bt709", "bt709")


def test_hls_of_an_odd_sized_hdr_input_is_tone_mapped(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.hls", inputs["hdr_odd"], heights=[120, 60])
    outs = outputs_by_name(row)
    assert row["result"]["metadata"]["tonemapped_from"] == "HLG"
    for rendition in ("120p", "60p"):
        video = streams(worker.stored(outs[f"hls/{rendition}/index.m3u8"]))["video"]
        assert video["color_transfer"] == "bt709" and video["width"] % 2 == 0


def test_video_process_on_audio_only_input_writes_m4a_and_says_so(worker: LiveWorker,
                                                                   inputs: dict[str, Path]) -> None:
    row = worker.submit("video.process", inputs["audio_only"])
    outs = outputs_by_name(row)
    assert list(outs) == ["audio.m4a"]
    assert "audio only" in row["result"]["metadata"]["note"]
    assert [s["codec_type"] for s in ffprobe_json(worker.stored(outs["audio.m4a"]))["streams"]] == ["audio"]


def test_thumbnails_sprite_and_storyboard(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.thumbnails", inputs["landscape"], count=5, width=80, sprite=True, storyboard=True,
                        columns=3)
    outs = outputs_by_name(row)
    assert len([n for n in outs if n.startswith("thumbnails/")]) == 5
    sprite = streams(worker.stored(outs["sprite.jpg"]))["video"]
    assert (sprite["width"], sprite["height"]) == (3 * 80, 2 * 60)
    assert outs["storyboard.vtt"]["content_type"] == "text/vtt"
    vtt = worker.stored(outs["storyboard.vtt"]).read_text().splitlines()
    assert vtt[0] == "WEBVTT"
    assert "00:00:00.000 --> 00:00:00.400" in vtt
    assert "sprite.jpg#xywh=0,0,80,60" in vtt and "sprite.jpg#xywh=80,60,80,60" in vtt


def test_clips_are_frame_accurate_and_cropped_to_9_16(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.clips", inputs["landscape"], aspect="9:16",
                        segments=[{"start": 0.2, "end": 1.0, "name": "intro"}, {"start": 1.0, "end": 2.0}])
    outs = outputs_by_name(row)
    assert set(outs) == {"clips/intro.mp4", "clips/clip_02.mp4"}
    intro = ffprobe_json(worker.stored(outs["clips/intro.mp4"]))
    video = next(s for s in intro["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (134, 240)
    assert int(video["nb_frames"]) == 20  # 0.8 s at 25 fps, exactly
    assert abs(float(intro["format"]["duration"]) - 0.8) < 0.1


def test_clip_outside_the_input_fails_naming_the_segment(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.clips", inputs["landscape"], segments=[{"start": 0, "end": 1}, {"start": 1, "end": 9}])
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "payload.segments.1" in row["error"] and "clip_02" in row["error"]


def test_audio_extract_wav_with_two_pass_loudnorm(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("audio.extract", inputs["landscape"], loudnorm=True)
    outs = outputs_by_name(row)
    audio = streams(worker.stored(outs["audio.wav"]))["audio"]
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("pcm_s16le", "16000", 1)
    assert float(row["result"]["metadata"]["loudness_measured"]["input_i"]) < 0


@pytest.mark.parametrize(("fmt", "codec"), [("flac", "flac"), ("m4a", "aac")])
def test_audio_extract_flac_and_m4a(worker: LiveWorker, inputs: dict[str, Path], fmt: str, codec: str) -> None:
    row = worker.submit("audio.extract", inputs["audio_only"], format=fmt, channels=2, sample_rate=22050)
    audio = streams(worker.stored(outputs_by_name(row)[f"audio.{fmt}"]))["audio"]
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == (codec, "22050", 2)


def test_hls_ladder_is_never_upscaled_and_plays_from_the_master(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("video.hls", inputs["landscape"], heights=[120, 240, 720], segment_seconds=1)
    outs = outputs_by_name(row)
    assert {n for n in outs if n.endswith(".m3u8")} == {"hls/master.m3u8", "hls/120p/index.m3u8",
                                                        "hls/240p/index.m3u8"}
    assert outs["hls/master.m3u8"]["content_type"] == "application/vnd.apple.mpegurl"
    # segments are named in hls/manifest.json, not listed in the result; playlists carry their count
    manifest = json.loads(worker.stored(outs["hls/manifest.json"]).read_text())
    assert {f["name"]: f["content_type"] for f in manifest["files"]}["240p/seg_000.ts"] == "video/mp2t"
    assert not [n for n in outs if "/seg_" in n]
    # keyframes forced on every 1 s boundary in both renditions (the default GOP would give one segment each)
    assert outs["hls/120p/index.m3u8"]["segments"] == outs["hls/240p/index.m3u8"]["segments"] == 2
    master = worker.stored(outs["hls/master.m3u8"])
    assert "RESOLUTION=320x240" in master.read_text() and "720p" not in master.read_text()
    whole = ffprobe_json(master.parent / "240p" / "index.m3u8")
    assert abs(float(whole["format"]["duration"]) - 2.0) < 0.3


def test_media_probe_returns_metadata_only(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("media.probe", inputs["odd"])
    assert row["status"] == "completed" and row["result"]["outputs"] == []
    meta = row["result"]["metadata"]
    assert meta["video"]["width"] == 321 and meta["audio"]["codec"] == "aac"
    assert [s["codec_type"] for s in meta["stream_details"]] == ["video", "audio"]


def test_custom_handler_module_is_loaded_and_run(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    row = worker.submit("example.gray_poster", inputs["landscape"], width=80)
    outs = outputs_by_name(row)
    gray = streams(worker.stored(outs["gray.jpg"]))["video"]
    assert (gray["codec_name"], gray["width"]) == ("mjpeg", 80)
    assert row["result"]["metadata"]["label"] == "gray poster"
    bad = worker.submit("example.gray_poster", inputs["landscape"], colour="red")
    assert bad["status"] == "failed" and "payload.colour: unknown key" in bad["error"]


@pytest.mark.parametrize(("name", "message"), [
    ("empty", "empty (0 bytes)"),
    ("random", "not a readable video or audio file"),
    ("corrupt", "not a readable video or audio file"),
    ("truncated", "failed verification"),
    ("hls_playlist", "container is not allowed"),
    ("big_frame", "MEDIA_MAX_PIXELS allows 1000000"),
    ("long_audio", "MEDIA_MAX_DURATION_SECONDS allows 20s"),
    ("many_streams", "MEDIA_MAX_STREAMS allows 4"),
])
def test_hostile_inputs_fail_permanently_with_a_readable_error(worker: LiveWorker, inputs: dict[str, Path],
                                                               name: str, message: str) -> None:
    row = worker.submit("video.process", inputs[name])
    assert row["status"] == "failed" and row["attempts"] == 1, row
    assert message in row["error"]
    assert "Traceback" not in row["error"]


def test_startup_proves_hardware_and_chooses_the_cpu_here(worker: LiveWorker, inputs: dict[str, Path]) -> None:
    # The worker is past start-up once a job has run; this one runs ffmpeg, so its path is logged.
    worker.submit("video.thumbnails", inputs["landscape"], count=1)
    events = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    chosen = next(e for e in events if e.get("event") == "hwaccel_chosen")
    assert chosen["path"] == "cpu" and chosen["mode"] == "auto"
    assert "h264_nvenc encode" in chosen["tried"]  # proven by a test encode, which failed here
    assert "libcuda" not in json.dumps(chosen)  # why it failed is debug detail, not an info line per start
    assert any(e.get("event") == "ffmpeg_path" and e.get("path") == "cpu" and e.get("job_id") for e in events)
