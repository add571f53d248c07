"""Running ffprobe and ffmpeg safely: argv lists only, limits, and a supervisor.

`probe()` reads a local file with a demuxer allow-list, so a playlist or concat file
disguised as .mp4 is refused before anything opens the files it points at; `probe_output()`
reads one of our own outputs. Every ffprobe run goes through `run_ffprobe()`.
`utils.ffmpeg_supervisor.run_ffmpeg()` runs one ffmpeg in its own process group and kills
the whole group on timeout, stall or a stop request.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# DESIGN.md §8: the only demuxers ffprobe/ffmpeg may use on an input.
ALLOWED_DEMUXERS = ("mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "flv", "ogg",
                    "wav", "mp3", "flac", "aac")
PROBE_TIMEOUT_SECONDS = 60
PROBE_SIZE_BYTES = 50_000_000
ANALYZE_DURATION_US = 20_000_000
STDERR_TAIL_LINES = 20


class MediaError(Exception):
    """The input cannot be used, or ffmpeg failed on it. `stderr_tail` holds ffmpeg's last words."""

    def __init__(self, message: str, stderr_tail: str = "", *, retryable: bool = False) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail
        self.retryable = retryable


class FFmpegStopped(Exception):
    """ffmpeg was killed because the caller asked it to stop."""


@dataclass(frozen=True)
class MediaLimits:
    max_pixels: int
    max_duration_seconds: float
    max_streams: int


# ffprobe's color_transfer names of the HDR transfer functions.
HDR_TRANSFERS = {"smpte2084": "PQ", "arib-std-b67": "HLG"}


@dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    rotation: int
    frame_rate: float | None
    duration: float | None = None
    color_transfer: str | None = None
    color_primaries: str | None = None
    color_space: str | None = None

    @property
    def hdr(self) -> str | None:
        """"PQ" or "HLG" for an HDR stream (iPhones record HLG), None for SDR."""
        return HDR_TRANSFERS.get(self.color_transfer or "")

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height after rotation is applied."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int | None
    channels: int | None
    duration: float | None = None


@dataclass(frozen=True)
class ProbeResult:
    """What ffprobe found in a file."""

    demuxer: str
    format_name: str
    duration: float
    size: int
    bit_rate: int | None
    video: VideoStream | None
    audio: AudioStream | None
    stream_count: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    def to_metadata(self) -> dict[str, Any]:
        """The JSON-able summary stored in a job's result."""
        meta: dict[str, Any] = {"format": self.format_name, "duration": round(self.duration, 3),
                                "size": self.size, "bit_rate": self.bit_rate, "streams": self.stream_count}
        if self.video:
            w, h = self.video.display_size
            meta["video"] = {"codec": self.video.codec, "width": w, "height": h,
                             "pix_fmt": self.video.pix_fmt, "rotation": self.video.rotation,
                             "frame_rate": self.video.frame_rate, "hdr": self.video.hdr}
        if self.audio:
            meta["audio"] = {"codec": self.audio.codec, "sample_rate": self.audio.sample_rate,
                             "channels": self.audio.channels}
        return meta


def _number(value: Any, kind: type = float) -> Any:
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _frame_rate(text: str | None) -> float | None:
    if not text or "/" not in text:
        return None
    num, den = text.split("/", 1)
    n, d = _number(num), _number(den)
    return round(n / d, 3) if n and d else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(_number(side["rotation"]) or 0) % 360
    return int(_number(stream.get("tags", {}).get("rotate")) or 0) % 360


def parse_probe(data: dict[str, Any]) -> ProbeResult:
    """Build a ProbeResult from ffprobe's JSON."""
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    durations = [_number(fmt.get("duration"))] + [_number(s.get("duration")) for s in streams]
    return ProbeResult(
        demuxer=str(fmt.get("format_name", "")).split(",")[0],
        format_name=str(fmt.get("format_name", "")),
        duration=max((d for d in durations if d), default=0.0),
        size=_number(fmt.get("size"), int) or 0,
        bit_rate=_number(fmt.get("bit_rate"), int),
        video=VideoStream(str(video.get("codec_name")), int(video.get("width") or 0),
                          int(video.get("height") or 0), video.get("pix_fmt"), _rotation(video),
                          _frame_rate(video.get("avg_frame_rate")) or _frame_rate(video.get("r_frame_rate")),
                          _number(video.get("duration")), video.get("color_transfer"), video.get("color_primaries"),
                          video.get("color_space"))
        if video else None,
        audio=AudioStream(str(audio.get("codec_name")), _number(audio.get("sample_rate"), int),
                          _number(audio.get("channels"), int), _number(audio.get("duration"))) if audio else None,
        stream_count=len(streams),
        raw=data,
    )


def probe_argv(ffprobe: str, path: Path) -> list[str]:
    return [ffprobe, "-v", "error", "-hide_banner",
            "-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_DEMUXERS),
            "-probesize", str(PROBE_SIZE_BYTES), "-analyzeduration", str(ANALYZE_DURATION_US),
            "-show_format", "-show_streams", "-of", "json", "-i", f"file:{path}"]


def output_probe_argv(ffprobe: str, path: Path) -> list[str]:
    """Our own outputs need no demuxer allow-list: they include images, playlists and WebVTT."""
    return [ffprobe, "-v", "error", "-hide_banner", "-protocol_whitelist", "file",
            "-show_format", "-show_streams", "-of", "json", "-i", f"file:{path}"]


def run_ffprobe(argv: list[str], timeout_message: str) -> subprocess.CompletedProcess[str]:
    """Run ffprobe without stdin; raise MediaError(timeout_message) past PROBE_TIMEOUT_SECONDS."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(timeout_message) from exc


def probe(ffprobe: str, path: Path) -> ProbeResult:
    """Probe a local file with the demuxer allow-list; raise MediaError if it is not usable media."""
    if path.stat().st_size == 0:
        raise MediaError("the input file is empty (0 bytes): upload the video again")
    proc = run_ffprobe(probe_argv(ffprobe, path),
                       f"ffprobe took over {PROBE_TIMEOUT_SECONDS}s on the input; it is not a usable media file")
    tail = stderr_tail(proc.stderr)
    if proc.returncode != 0:
        if "not on whitelist" in proc.stderr:
            raise MediaError("the input's container is not allowed (playlists, concat lists and images are "
                             f"refused); upload one of: {', '.join(ALLOWED_DEMUXERS)}", tail)
        raise MediaError("the input is not a readable video or audio file (ffprobe could not parse it); "
                         "check the upload is complete and not corrupt", tail)
    return parse_probe(json.loads(proc.stdout or "{}"))


def probe_output(ffprobe: str, path: Path) -> ProbeResult:
    """ffprobe one of our own outputs (local files only); raise MediaError if it is unreadable."""
    proc = run_ffprobe(output_probe_argv(ffprobe, path),
                       f"output {path.name} could not be probed in {PROBE_TIMEOUT_SECONDS}s")
    if proc.returncode != 0:
        raise MediaError(f"output {path.name} is not readable media", stderr_tail(proc.stderr))
    return parse_probe(json.loads(proc.stdout or "{}"))


def check_limits(result: ProbeResult, limits: MediaLimits) -> None:
    """Raise MediaError naming the limit an input exceeds, or the reason it is unusable."""
    if result.demuxer not in ALLOWED_DEMUXERS:
        raise MediaError(f"container {result.format_name!r} is not allowed; upload one of: "
                         f"{', '.join(ALLOWED_DEMUXERS)}")
    if not result.video and not result.audio:
        raise MediaError("the input has no video or audio stream")
    if result.stream_count > limits.max_streams:
        raise MediaError(f"the input has {result.stream_count} streams; MEDIA_MAX_STREAMS allows "
                         f"{limits.max_streams}")
    if result.duration > limits.max_duration_seconds:
        raise MediaError(f"the input lasts {result.duration:.0f}s; MEDIA_MAX_DURATION_SECONDS allows "
                         f"{limits.max_duration_seconds:.0f}s")
    if result.video:
        w, h = result.video.width, result.video.height
        if w <= 0 or h <= 0:
            raise MediaError("the input's video stream has no dimensions; it is corrupt or truncated")
        if w * h > limits.max_pixels:
            raise MediaError(f"the input is {w}x{h} ({w * h} pixels); MEDIA_MAX_PIXELS allows {limits.max_pixels}")


def stderr_tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def ffmpeg_version(binary: str) -> str:
    """First line of `binary -version`; raise MediaError if it cannot run."""
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"cannot run {binary}: {exc}") from exc
    return out.stdout.splitlines()[0] if out.stdout else binary
