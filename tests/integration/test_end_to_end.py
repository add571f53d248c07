"""The vertical slice through real processes: enqueue, claim, ffmpeg, storage, completed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.media import ffprobe_json, sha256
from tests.support.workers import (
    insert_job,
    job_row,
    put_local_object,
    run_cli,
    start_worker,
    wait_for_status,
    worker_env,
)

pytestmark = pytest.mark.slow


def test_enqueue_then_run_until_idle_completes_the_job(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    env = worker_env(db_url, data_dir)
    job_id = run_cli(["enqueue", "video.process", "--input", str(sample_clip)], env).stdout.strip()
    run_cli(["run", "--until-idle"], env)
    shown = run_cli(["jobs", "show", job_id], env).stdout
    assert '"status": "completed"' in shown

    row = job_row(db_url, job_id)
    assert row["status"] == "completed" and row["progress"] == 100 and row["attempts"] == 1
    outputs = {o["kind"]: o for o in row["result"]["outputs"]}
    assert set(outputs) == {"video", "poster", "thumbnail"}
    video = data_dir / "storage" / "media-outputs" / outputs["video"]["path"]
    poster = data_dir / "storage" / "media-outputs" / outputs["poster"]["path"]
    assert outputs["video"]["path"] == f"anonymous/{job_id}/video.mp4"
    for out, path in ((outputs["video"], video), (outputs["poster"], poster)):
        assert path.is_file()
        assert out["sha256"] == sha256(path) and out["size"] == path.stat().st_size
    probe = ffprobe_json(video)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["video"]["pix_fmt"] == "yuv420p"
    assert codecs["audio"]["codec_name"] == "aac"
    source_duration = float(ffprobe_json(sample_clip)["format"]["duration"])
    assert abs(float(probe["format"]["duration"]) - source_duration) <= 0.5
    assert row["result"]["metadata"]["video"]["width"] == 320
    assert ffprobe_json(poster)["streams"][0]["codec_name"] == "mjpeg"
    assert not list((data_dir / "tmp").glob("job-*")), "work directory left behind"


def test_text_file_named_mp4_fails_and_the_worker_carries_on(db_url: str, data_dir: Path, sample_clip: Path,
                                                            tmp_path: Path) -> None:
    put_local_object(data_dir, "media-uploads", "anonymous/bad/notes.mp4", b"these are my notes, not a video\n" * 20)
    put_local_object(data_dir, "media-uploads", "anonymous/good/clip.mp4", sample_clip)
    worker = start_worker(worker_env(db_url, data_dir), log_path=tmp_path / "worker.log")
    try:
        bad = insert_job(db_url, "video.process", {"input": {"bucket": "media-uploads", "path": "anonymous/bad/notes.mp4"}})
        bad_row = wait_for_status(db_url, bad, {"failed", "completed"})
        good = insert_job(db_url, "video.process", {"input": {"bucket": "media-uploads", "path": "anonymous/good/clip.mp4"}})
        good_row = wait_for_status(db_url, good, {"failed", "completed"})
        assert worker.poll() is None, "worker died"
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    assert bad_row["status"] == "failed" and bad_row["attempts"] == 1
    assert "not a readable video or audio file" in bad_row["error"]
    assert str(data_dir / "tmp") not in bad_row["error"], "the message leaks the worker's paths"
    assert good_row["status"] == "completed"
    assert code == 0


def test_bad_configuration_exits_with_one_clear_message(tmp_path: Path) -> None:
    env = worker_env("postgresql://nowhere/db", tmp_path, WORKER_CONCURRENCY="lots", VIDEO_CRF="99")
    proc = run_cli(["run"], env, check=False)
    assert proc.returncode == 2
    assert "WORKER_CONCURRENCY='lots'" in proc.stderr and "VIDEO_CRF='99'" in proc.stderr
    assert "Traceback" not in proc.stderr
