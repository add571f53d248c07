"""Why crf 0 is refused: x264's High profile, which web MP4s use, cannot encode it; crf 1 it can."""

from __future__ import annotations

import subprocess

import pytest

from utils.media_plan import CPU, h264_quality_args


def encode_one_frame(crf: int) -> subprocess.CompletedProcess[str]:
    flat = [arg for k, v in h264_quality_args(CPU, crf, "ultrafast").items() for arg in (f"-{k}", str(v))]
    return subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1",
                           "-frames:v", "1", "-pix_fmt", "yuv420p", *flat, "-f", "null", "-"],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("crf", [1, 51])
def test_the_lowest_and_highest_accepted_crf_encode(crf: int) -> None:
    assert encode_one_frame(crf).returncode == 0


def test_crf_0_fails_in_ffmpeg_as_the_payload_error_says() -> None:
    run = encode_one_frame(0)
    assert run.returncode != 0 and "lossless" in run.stderr
