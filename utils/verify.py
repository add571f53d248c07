"""Checking ffmpeg's outputs with ffprobe before they are uploaded.

A handler states what each output must hold (an `Expect`); `verify_output` probes the file
and raises MediaError listing every mismatch, so a broken encode never reaches Storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from utils.ffmpeg import MediaError, ProbeResult, probe_output


@dataclass(frozen=True)
class Expect:
    """What an output file must contain. None means "not checked"; tolerance is in seconds."""

    video_codec: str | None = None
    pix_fmt: str | None = None
    size: tuple[int, int] | None = None
    audio_codec: str | None = None
    no_video: bool = False
    duration: float | None = None
    tolerance: float = 0.5


def problems(found: ProbeResult, expect: Expect) -> list[str]:
    """Every way `found` differs from `expect`, in words; empty when it matches."""
    issues = []
    video = found.video
    if expect.video_codec and (video is None or video.codec != expect.video_codec):
        issues.append(f"expected {expect.video_codec} video, found {video.codec if video else 'none'}")
    if video and expect.pix_fmt and video.pix_fmt != expect.pix_fmt:
        issues.append(f"expected pixel format {expect.pix_fmt}, found {video.pix_fmt}")
    if video and video.rotation:
        issues.append(f"video still carries a {video.rotation} degree rotation")
    if video and video.hdr:
        issues.append(f"video is still tagged {video.hdr} (HDR): it was not tone-mapped to SDR")
    if video and expect.size and (video.width, video.height) != expect.size:
        issues.append(f"expected {expect.size[0]}x{expect.size[1]}, found {video.width}x{video.height}")
    if expect.no_video and video is not None:
        issues.append("expected no video stream")
    if expect.audio_codec and (found.audio is None or found.audio.codec != expect.audio_codec):
        issues.append(f"expected {expect.audio_codec} audio, found {found.audio.codec if found.audio else 'none'}")
    if expect.duration is not None and abs(found.duration - expect.duration) > expect.tolerance:
        issues.append(f"expected {expect.duration:.2f}s (±{expect.tolerance:.2f}), found {found.duration:.2f}s")
    return issues


def verify_output(ffprobe: str, path: Path, expect: Expect, name: str) -> None:
    """Raise MediaError naming the output and every expectation it fails."""
    issues = problems(probe_output(ffprobe, path), expect)
    if issues:
        raise MediaError(f"output {name} failed verification: {'; '.join(issues)}")


def duration_tolerance(seconds: float) -> float:
    """How far an output's duration may stray from its source: 0.5 s or 2 %, whichever is larger."""
    return max(0.5, seconds * 0.02)
