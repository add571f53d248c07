"""Pure arithmetic behind the ffmpeg commands: sizes, times, ladders, storyboards, encoder choice.

Nothing here runs a process, so all of it is tested without ffmpeg.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Accel:
    """One way to run a job: which H.264 encoder, and which hardware decoder (if any)."""

    name: str
    encoder: str = "libx264"
    hwaccel: str | None = None
    device: str | None = None  # VAAPI render node; frames are uploaded to it before encoding

    @property
    def is_cpu(self) -> bool:
        return self.encoder == "libx264" and self.hwaccel is None


CPU = Accel("cpu")
NVENC = Accel("nvenc", encoder="h264_nvenc", hwaccel="cuda")
NVDEC = Accel("nvdec", hwaccel="cuda")
NVENC_CPU_DECODE = Accel("nvenc-cpu-decode", encoder="h264_nvenc")
QSV = Accel("qsv", encoder="h264_qsv")
VAAPI = Accel("vaapi", encoder="h264_vaapi", device="/dev/dri/renderD128")


def even(value: float) -> int:
    """The nearest even integer (halves round up, as ffmpeg's scale does), at least 2."""
    return max(2, math.floor(value / 2 + 0.5) * 2)


def even_floor(value: float) -> int:
    """The largest even integer not above value (at least 2)."""
    return max(2, int(value) // 2 * 2)


def fit_height(width: int, height: int, max_height: int) -> tuple[int, int]:
    """(w, h) scaled to at most max_height, never upscaled, both even: what scale=-2:trunc(...) gives."""
    target = even_floor(min(height, max_height))
    return even(width * target / height), target


def fit_width(width: int, height: int, target_width: int) -> tuple[int, int]:
    """(w, h) scaled to target_width (never upscaled), both even."""
    target = even_floor(min(width, target_width))
    return target, even(height * target / width)


def centre_crop(width: int, height: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """The largest even (w, h) of the given aspect that fits inside width x height."""
    aw, ah = aspect
    if width * ah > height * aw:
        return even_floor(height * aw / ah), even_floor(height)
    return even_floor(width), even_floor(width * ah / aw)


def sample_times(duration: float, count: int, frame_rate: float | None) -> list[float]:
    """Evenly spaced times (the middle of each of `count` slices), kept before the last frame."""
    last = max(0.0, duration - 1.0 / (frame_rate or 10.0))
    return [round(min(duration * (i + 0.5) / count, last), 3) for i in range(count)]


def select_times_expr(times: list[float]) -> str:
    """A select-filter expression passing the first frame at or after each time, once."""
    terms = [f"gte(t,{t})*(isnan(prev_selected_t)+lt(prev_selected_t,{t}))" for t in sorted(set(times))]
    return f"gt({'+'.join(terms)},0)"


def poster_time(duration: float) -> float:
    """Where the poster frame is taken: 10 % in, at most 5 s, 0 for very short clips."""
    return 0.0 if duration < 1.0 else min(duration * 0.1, 5.0)


def sprite_grid(count: int, columns: int) -> tuple[int, int]:
    """(columns, rows) of a sprite sheet holding `count` tiles."""
    cols = max(1, min(columns, count))
    return cols, math.ceil(count / cols)


def vtt_timestamp(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def storyboard_vtt(duration: float, count: int, tile: tuple[int, int], columns: int, sprite_name: str) -> str:
    """A WebVTT storyboard: one cue per slice, pointing at its tile with #xywh=."""
    w, h = tile
    lines = ["WEBVTT", ""]
    for i in range(count):
        x, y = (i % columns) * w, (i // columns) * h
        start, end = duration * i / count, duration * (i + 1) / count
        lines += [f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}", f"{sprite_name}#xywh={x},{y},{w},{h}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Rendition:
    """One rung of an HLS ladder."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int = 128


LADDER_KBPS = {240: 400, 360: 800, 480: 1400, 540: 2000, 720: 2800, 1080: 5000, 1440: 8000, 2160: 14000}


def hls_ladder(width: int, height: int, heights: list[int]) -> list[Rendition]:
    """Renditions for the requested heights the source can fill; never upscaled, at least one."""
    usable = sorted({h for h in heights if h <= height}) or [height]
    rungs = []
    for target in usable:
        w, h = fit_height(width, height, target)
        kbps = LADDER_KBPS.get(target) or max(200, int(w * h * 30 * 0.08 / 1000))
        rungs.append(Rendition(f"{target}p", w, h, kbps))
    return rungs


def keyframe_expr(segment_seconds: float) -> str:
    """-force_key_frames expression: a keyframe on every segment boundary, in every rendition."""
    return f"expr:gte(t,n_forced*{segment_seconds})"


def gop_frames(frame_rate: float | None, segment_seconds: float) -> int:
    return max(1, int(round((frame_rate or 25.0) * segment_seconds)))


def h264_quality_args(accel: Accel, crf: int, preset: str) -> dict[str, Any]:
    """Constant-quality H.264 options for the chosen encoder (CRF mapped onto its own quality scale)."""
    if accel.encoder == "h264_nvenc":
        return {"c:v": "h264_nvenc", "rc": "vbr", "cq": crf, "b:v": 0, "preset": "p4", "profile:v": "high"}
    if accel.encoder == "h264_qsv":
        return {"c:v": "h264_qsv", "global_quality": crf, "preset": "medium", "profile:v": "high"}
    if accel.encoder == "h264_vaapi":
        return {"c:v": "h264_vaapi", "qp": crf, "profile:v": "high"}
    return {"c:v": "libx264", "crf": crf, "preset": preset, "profile:v": "high"}


HARDWARE_PRESETS = {"h264_nvenc": "p4", "h264_qsv": "medium", "h264_vaapi": None}


def h264_bitrate_args(accel: Accel, index: int, kbps: int, preset: str) -> dict[str, Any]:
    """Capped-bitrate H.264 options for output video stream `index` (HLS renditions)."""
    speed = HARDWARE_PRESETS.get(accel.encoder, preset)
    return {f"c:v:{index}": accel.encoder, f"b:v:{index}": f"{kbps}k", f"maxrate:v:{index}": f"{int(kbps * 1.07)}k",
            f"bufsize:v:{index}": f"{int(kbps * 1.5)}k", f"profile:v:{index}": "high",
            **({f"preset:v:{index}": speed} if speed else {})}


def parse_loudnorm(stderr: str) -> dict[str, str] | None:
    """The JSON block loudnorm prints with print_format=json; None if absent or unusable (silence)."""
    start, end = stderr.rfind("{"), stderr.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(stderr[start:end + 1])
    except json.JSONDecodeError:
        return None
    keys = ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
    if not all(k in data for k in keys) or any("inf" in str(data[k]) for k in keys):
        return None
    return {k: str(data[k]) for k in keys}
