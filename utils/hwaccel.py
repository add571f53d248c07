"""Choosing the ffmpeg path at start-up: NVENC, NVDEC with CPU encode, or CPU only.

Being listed by `ffmpeg -encoders` is not proof (Debian's ffmpeg lists h264_nvenc on
machines without a GPU, and data-centre GPUs such as the H100 have NVDEC but no NVENC),
so each encoder and decoder is proven with a one-frame test run.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from utils.ffmpeg_commands import decoder_test_command, encoder_test_command, sample_h264_command
from utils.media_plan import CPU, NVDEC, NVENC, NVENC_CPU_DECODE, Accel

TEST_TIMEOUT_SECONDS = 30
UNSUPPORTED_MODES = ("vaapi", "qsv")


@dataclass(frozen=True)
class AccelChoice:
    """The path jobs will try first, and why it was chosen."""

    accel: Accel
    reasons: tuple[str, ...]


def run_test(argv: list[str]) -> str | None:
    """Run a one-frame test; None when it worked, else ffmpeg's last error line."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TEST_TIMEOUT_SECONDS,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    # The first line names the cause ("Cannot load libcuda.so.1"); the last is generic.
    lines = proc.stderr.strip().splitlines()
    return lines[0] if lines else f"exit {proc.returncode}"


def prove_nvenc(ffmpeg_path: str) -> str | None:
    return run_test(encoder_test_command(ffmpeg_path, "h264_nvenc"))


def prove_nvdec(ffmpeg_path: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="mw-hwaccel-") as tmp:
        sample = Path(tmp) / "sample.mp4"
        failed = run_test(sample_h264_command(ffmpeg_path, sample))
        if failed:
            return f"could not make the test file: {failed}"
        return run_test(decoder_test_command(ffmpeg_path, "cuda", sample))


def choose_accel(ffmpeg_path: str, mode: str) -> AccelChoice:
    """Prove the hardware paths FFMPEG_HWACCEL allows and return the best one that works."""
    if mode == "none":
        return AccelChoice(CPU, ("FFMPEG_HWACCEL=none",))
    if mode in UNSUPPORTED_MODES:
        return AccelChoice(CPU, (f"FFMPEG_HWACCEL={mode}: the job pipelines support NVIDIA (nvenc) only; "
                                 "using the CPU",))
    encode_error, decode_error = prove_nvenc(ffmpeg_path), prove_nvdec(ffmpeg_path)
    reasons = (f"h264_nvenc encode: {encode_error or 'ok'}", f"cuda decode: {decode_error or 'ok'}")
    if encode_error is None:
        return AccelChoice(NVENC if decode_error is None else NVENC_CPU_DECODE, reasons)
    return AccelChoice(NVDEC if decode_error is None else CPU, reasons)
