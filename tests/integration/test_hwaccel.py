"""Choosing the ffmpeg path: proven by one-frame tests, with a per-job fallback to the CPU."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from handlers import load_handlers
from handlers.base import HandlerResult, JobContext, MediaSettings
from tests.support.media import make_clip
from utils.ffmpeg import MediaLimits, probe
from utils.ffmpeg_commands import WebVideoOptions, encoder_test_command
from utils.hwaccel import AccelChoice, choose_accel
from utils.media_plan import CPU, NVENC, QSV, VAAPI, Accel
from utils.verify import verify_output

no_gpu = pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU")
no_intel_or_amd_gpu = pytest.mark.skipif(Path("/dev/dri").exists(), reason="this machine has a DRM device")


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
@no_intel_or_amd_gpu
def test_auto_proves_every_path_and_chooses_the_cpu_without_a_gpu() -> None:
    choice = choose_accel("ffmpeg", "auto")
    assert choice.accel == CPU
    assert [r.split(":")[0] for r in choice.reasons] == ["h264_nvenc encode", "cuda decode", "h264_qsv encode",
                                                         "h264_vaapi encode"]
    assert not any(r.endswith(": ok") for r in choice.reasons)


def test_none_skips_the_probe() -> None:
    assert choose_accel("/nonexistent/ffmpeg", "none") == AccelChoice(CPU, ("FFMPEG_HWACCEL=none",))


@no_intel_or_amd_gpu
@pytest.mark.parametrize(("mode", "encoder"), [("vaapi", "h264_vaapi"), ("qsv", "h264_qsv")])
def test_explicit_modes_are_proven_too_and_fall_back_to_the_cpu(mode: str, encoder: str) -> None:
    choice = choose_accel("ffmpeg", mode)
    assert choice.accel == CPU
    assert len(choice.reasons) == 1 and choice.reasons[0].startswith(f"{encoder} encode: ")
    assert not choice.reasons[0].endswith(": ok")


@pytest.mark.parametrize("accel", [
    pytest.param(NVENC, marks=no_gpu), pytest.param(VAAPI, marks=no_intel_or_amd_gpu),
    pytest.param(QSV, marks=no_intel_or_amd_gpu)], ids=lambda a: a.name)
def test_a_failed_gpu_run_is_retried_on_the_cpu_for_that_job_only(tmp_path: Path, accel: Accel) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, size="160x120")
    for attempt in ("first", "second"):  # each job tries the GPU again: the worker is not demoted
        result = run_handler("video.process", {"thumbnails": 1}, clip, tmp_path / attempt, accel)
        assert result.metadata == {"ffmpeg_path": "cpu", "ffmpeg_path_fallback_from": accel.name}
        assert {a.name for a in result.artifacts} == {"video.mp4", "poster.jpg", "thumbnails/thumb_001.jpg"}


def test_vaapi_commands_upload_frames_to_the_device() -> None:
    argv = encoder_test_command("ffmpeg", VAAPI)
    assert argv[argv.index("-vaapi_device") + 1] == "/dev/dri/renderD128"
    assert "format=nv12[" in argv[argv.index("-filter_complex") + 1] and "hwupload" in " ".join(argv)


def test_a_cpu_run_reports_the_cpu_path(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1, size="160x120")
    result = run_handler("video.clips", {"segments": [{"start": 0, "end": 0.5}]}, clip, tmp_path / "job", CPU)
    assert result.metadata == {"ffmpeg_path": "cpu"}
