"""Choosing the ffmpeg path: proven by one-frame tests, with a per-job fallback to the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers import load_handlers
from handlers.base import HandlerResult, JobContext, MediaSettings
from tests.helpers import make_clip
from utils.ffmpeg import MediaLimits, probe
from utils.ffmpeg_commands import WebVideoOptions
from utils.hwaccel import choose_accel
from utils.media_plan import CPU, NVENC, Accel
from utils.verify import verify_output

no_gpu = pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")


def media(accel: Accel) -> MediaSettings:
    return MediaSettings("ffmpeg", "ffprobe", WebVideoOptions(240, 30, "ultrafast"), MediaLimits(10**8, 600, 16),
                         timeout_seconds=120, stall_seconds=60, accel=accel)


def run_handler(job_type: str, payload: dict[str, object], source: Path, work_dir: Path,
                accel: Accel) -> HandlerResult:
    """A handler called the way the runner calls it, outputs verified the way the runner verifies them."""
    handler = load_handlers()[job_type]
    work_dir.mkdir()
    ctx = JobContext(input_path=source, probe=probe("ffprobe", source), work_dir=work_dir, media=media(accel),
                     report_progress=lambda _: None, should_stop=lambda: False)
    result = handler.run(handler.parse_payload({"input": {"path": "u/x.mp4"}, **payload}), ctx)
    for artifact in result.artifacts:
        assert artifact.expect is not None or artifact.kind == "hls_segment"
        if artifact.expect:
            verify_output("ffprobe", artifact.path, artifact.expect, artifact.name)
    return result


@no_gpu
def test_auto_proves_nvenc_and_nvdec_and_chooses_the_cpu_without_a_gpu() -> None:
    choice = choose_accel("ffmpeg", "auto")
    assert choice.accel == CPU
    encode, decode = choice.reasons
    assert encode.startswith("h264_nvenc encode: ") and not encode.endswith(": ok")
    assert decode.startswith("cuda decode: ") and not decode.endswith(": ok")


def test_none_skips_the_probe_and_unsupported_modes_say_why() -> None:
    assert choose_accel("/nonexistent/ffmpeg", "none").accel == CPU
    vaapi = choose_accel("/nonexistent/ffmpeg", "vaapi")
    assert vaapi.accel == CPU and "nvenc" in vaapi.reasons[0]


@no_gpu
def test_a_failed_gpu_run_is_retried_on_the_cpu_for_that_job_only(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, size="160x120")
    for attempt in ("first", "second"):  # each job tries the GPU again: the worker is not demoted
        result = run_handler("video.process", {"thumbnails": 1}, clip, tmp_path / attempt, NVENC)
        assert result.metadata == {"ffmpeg_path": "cpu", "ffmpeg_path_fallback_from": "nvenc"}
        assert {a.name for a in result.artifacts} == {"video.mp4", "poster.jpg", "thumbnails/thumb_001.jpg"}


def test_a_cpu_run_reports_the_cpu_path(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, size="160x120")
    result = run_handler("video.clips", {"segments": [{"start": 0, "end": 0.5}]}, clip, tmp_path / "job", CPU)
    assert result.metadata == {"ffmpeg_path": "cpu"}
