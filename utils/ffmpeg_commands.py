"""ffmpeg command lines, built with ffmpeg-python. No other module imports ffmpeg-python.

ffmpeg-python has had no release since 2019, so it is kept behind these few pure
functions that return argv lists; replacing it touches this file only.
Every input is opened with the file protocol only and its demuxer forced to the one
the probe allow-listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

GLOBAL_ARGS = ("-hide_banner", "-v", "error")


@dataclass(frozen=True)
class WebVideoOptions:
    """H.264 web MP4 settings (VIDEO_MAX_HEIGHT, VIDEO_CRF, VIDEO_PRESET)."""

    max_height: int
    crf: int
    preset: str


def open_input(path: Path, demuxer: str) -> Any:
    """The input node: local file only, demuxer forced to the probed, allow-listed one."""
    return ffmpeg.input(f"file:{path}", f=demuxer, protocol_whitelist="file")


def _scale_even(stream: Any, max_height: int) -> Any:
    # Never upscale; both sides even, as yuv420p H.264 requires.
    cap = max_height - max_height % 2
    # (ffmpeg-python escapes the comma for the filter graph itself.)
    return stream.filter("scale", w=-2, h=f"trunc(min(ih,{cap})/2)*2")


def _web_mp4(video: Any, audio: Any | None, dest: Path, opts: WebVideoOptions) -> Any:
    args: dict[str, Any] = {
        "vcodec": "libx264", "crf": opts.crf, "preset": opts.preset, "profile:v": "high",
        "pix_fmt": "yuv420p", "movflags": "+faststart", "map_metadata": -1,
    }
    streams = [video.filter("format", "yuv420p")]
    if audio is not None:
        streams.append(audio)
        args.update({"acodec": "aac", "b:a": "128k", "ac": 2})
    return ffmpeg.output(*streams, str(dest), **args)


def poster_time(duration: float) -> float:
    """Where the poster frame is taken: 10 % in, at most 5 s, 0 for very short clips."""
    return 0.0 if duration < 1.0 else min(duration * 0.1, 5.0)


def _still(video: Any, dest: Path, at_seconds: float) -> Any:
    frame = video.filter("setpts", "PTS-STARTPTS").filter("trim", start=at_seconds).filter("format", "yuvj420p")
    return ffmpeg.output(frame, str(dest), vframes=1, **{"q:v": 3})


def video_process_command(ffmpeg_path: str, src: Path, demuxer: str, *, mp4: Path, poster: Path,
                          duration: float, has_audio: bool, opts: WebVideoOptions) -> list[str]:
    """One decode that writes the web MP4 and the poster JPEG."""
    inp = open_input(src, demuxer)
    scaled = _scale_even(inp.video, opts.max_height).filter_multi_output("split", 2)
    outputs = [
        _web_mp4(scaled[0], inp.audio if has_audio else None, mp4, opts),
        _still(scaled[1], poster, poster_time(duration)),
    ]
    return _compile(ffmpeg_path, outputs)


def _compile(ffmpeg_path: str, outputs: list[Any]) -> list[str]:
    argv: list[str] = ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS).overwrite_output() \
        .compile(cmd=ffmpeg_path)
    return argv
