"""Choosing the ffmpeg path at start-up: NVENC, NVDEC with CPU encode, QSV, VAAPI, or CPU only.

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
from utils.media_plan import CPU, NVDEC, NVENC, NVENC_CPU_DECODE, QSV, VAAPI, Accel

TEST_TIMEOUT_SECONDS = 30
OTHER_ENCODERS = {"qsv": QSV, "vaapi": VAAPI}


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


def prove_encoder(ffmpeg_path: str, accel: Accel) -> str | None:
    return run_test(encoder_test_command(ffmpeg_path, accel))


def prove_nvdec(ffmpeg_path: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="mw-hwaccel-") as tmp:
        sample = Path(tmp) / "sample.mp4"
        failed = run_test(sample_h264_command(ffmpeg_path, sample))
        if failed:
            return f"could not make the test file: {failed}"
        return run_test(decoder_test_command(ffmpeg_path, "cuda", sample))


def choose_nvidia(ffmpeg_path: str) -> AccelChoice:
    """NVENC and NVDEC proven separately: data-centre GPUs (H100, H200) decode but cannot encode."""
    encode_error, decode_error = prove_encoder(ffmpeg_path, NVENC), prove_nvdec(ffmpeg_path)
    reasons = (f"h264_nvenc encode: {encode_error or 'ok'}", f"cuda decode: {decode_error or 'ok'}")
    if encode_error is None:
        return AccelChoice(NVENC if decode_error is None else NVENC_CPU_DECODE, reasons)
    return AccelChoice(NVDEC if decode_error is None else CPU, reasons)


def choose_encoder(ffmpeg_path: str, accel: Accel) -> AccelChoice:
    error = prove_encoder(ffmpeg_path, accel)
    return AccelChoice(CPU if error else accel, (f"{accel.encoder} encode: {error or 'ok'}",))


def choose_accel(ffmpeg_path: str, mode: str) -> AccelChoice:
    """Prove the hardware paths FFMPEG_HWACCEL allows and return the best one that works."""
    if mode == "none":
        return AccelChoice(CPU, ("FFMPEG_HWACCEL=none",))
    if mode in OTHER_ENCODERS:
        return choose_encoder(ffmpeg_path, OTHER_ENCODERS[mode])
    nvidia = choose_nvidia(ffmpeg_path)
    if mode == "nvenc" or nvidia.accel.encoder == "h264_nvenc":
        return nvidia
    reasons = nvidia.reasons
    for accel in OTHER_ENCODERS.values():  # auto: an Intel/AMD encoder beats an NVIDIA decoder alone
        other = choose_encoder(ffmpeg_path, accel)
        reasons += other.reasons
        if not other.accel.is_cpu:
            return AccelChoice(other.accel, reasons)
    return AccelChoice(nvidia.accel, reasons)
