"""ffmpeg command lines, built with ffmpeg-python. No other module imports ffmpeg-python.

ffmpeg-python has had no release since 2019, so it is kept behind these few pure
functions that return argv lists; replacing it touches this file only. The arithmetic
(sizes, times, ladders, encoder options) lives in utils/media_plan.py.
Every input is opened with the file protocol only and its demuxer forced to the one
the probe allow-listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg

from utils.media_plan import (
    CPU,
    Accel,
    Rendition,
    gop_frames,
    h264_bitrate_args,
    h264_quality_args,
    keyframe_expr,
    poster_time,
    select_times_expr,
)

GLOBAL_ARGS = ("-hide_banner", "-v", "error")
# A still gets its name only once written whole, so the runner may store it while ffmpeg runs (LiveOutput).
ATOMIC = {"atomic_writing": 1}
AUDIO_CODECS = {"wav": "pcm_s16le", "flac": "flac", "m4a": "aac"}


@dataclass(frozen=True)
class WebVideoOptions:
    """H.264 web MP4 settings (VIDEO_MAX_HEIGHT, VIDEO_CRF, VIDEO_PRESET)."""

    max_height: int
    crf: int
    preset: str


@dataclass(frozen=True)
class Stills:
    """Evenly spaced JPEG stills written as `pattern` (e.g. thumb_%02d.jpg) at `size`."""

    pattern: Path
    times: list[float]
    size: tuple[int, int]


@dataclass(frozen=True)
class ProcessOutputs:
    """What one video.process run writes; None means that output is not wanted."""

    mp4: Path | None = None
    poster: Path | None = None
    stills: Stills | None = None
    m4a: Path | None = None


@dataclass(frozen=True)
class Clip:
    dest: Path
    start: float
    end: float


def open_input(path: Path, demuxer: str, accel: Accel = CPU) -> Any:
    """The input node: local file only, demuxer forced to the probed, allow-listed one."""
    options: dict[str, Any] = {"f": demuxer, "protocol_whitelist": "file"}
    if accel.hwaccel:
        options["hwaccel"] = accel.hwaccel  # frames come back to system memory for the CPU filters
    return ffmpeg.input(f"file:{path}", **options)


def input_args(path: Path, demuxer: str) -> list[str]:
    """The same safe input as open_input, as argv for a hand-built command: the probed,
    allow-listed demuxer forced, and the file protocol only (a playlist named .mp4 can then read
    no other file)."""
    return ["-f", demuxer, "-protocol_whitelist", "file", "-i", f"file:{path}"]


# Tags for SDR outputs of an HDR source, so that players do not guess.
SDR_TAGS = {"color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709"}


@dataclass(frozen=True)
class Tonemap:
    """An HDR source to map to SDR. `assume` fills the colour tags it left unknown (zscale
    finds no conversion path without them), e.g. {"color_primaries": "bt2020"}."""

    assume: dict[str, str] = field(default_factory=dict)


def _sdr(video: Any, tonemap: Tonemap | None) -> Any:
    """HDR (PQ or HLG) to SDR BT.709: linearise, convert the primaries, tone-map (Hable), re-apply
    the BT.709 transfer. Without it an HDR phone video comes out grey and washed out."""
    if tonemap is None:
        return video
    if tonemap.assume:
        video = video.filter("setparams", **tonemap.assume)
    return (video.filter("zscale", t="linear", npl=100).filter("format", "gbrpf32le")
            .filter("zscale", p="bt709").filter("tonemap", tonemap="hable", desat=0)
            .filter("zscale", t="bt709", m="bt709", r="tv").filter("format", "yuv420p"))


def _scale_even(stream: Any, max_height: int) -> Any:
    # Never upscale; both sides even, as yuv420p H.264 requires.
    cap = max_height - max_height % 2
    return stream.filter("scale", w=-2, h=f"trunc(min(ih,{cap})/2)*2")


def _mp4(streams: list[Any], dest: Path, video_args: dict[str, Any]) -> Any:
    args: dict[str, Any] = {"movflags": "+faststart", "map_metadata": -1, "map_chapters": -1, **video_args}
    if len(streams) > 1:
        args.update({"c:a": "aac", "b:a": "128k", "ac": 2})
    return ffmpeg.output(*streams, str(dest), **args)


def _still(video: Any, dest: Path, at_seconds: float) -> Any:
    # end_frame=1 closes the branch after its frame, so later frames are not converted for nothing.
    frame = video.filter("setpts", "PTS-STARTPTS").filter("trim", start=at_seconds).filter("trim", end_frame=1) \
        .filter("format", "yuvj420p")
    return ffmpeg.output(frame, str(dest), vframes=1, **{"q:v": 3}, **ATOMIC)


def _selected(video: Any, stills: Stills, tonemap: Tonemap | None = None) -> Any:
    w, h = stills.size
    frames = video.filter("select", select_times_expr(stills.times)).filter("scale", w=w, h=h)
    return _sdr(frames, tonemap).filter("setsar", 1).filter("format", "yuvj420p")


def _still_sequence(frames: Any, stills: Stills) -> Any:
    return ffmpeg.output(frames, str(stills.pattern), fps_mode="vfr", **{"q:v": 3, "frames:v": len(stills.times)}, **ATOMIC)


def _audio_file(audio: Any, dest: Path, fmt: str, sample_rate: int | None = None, channels: int | None = None) -> Any:
    args: dict[str, Any] = {"c:a": AUDIO_CODECS[fmt], "vn": None, "map_metadata": -1}
    args.update({k: v for k, v in (("ar", sample_rate), ("ac", channels)) if v})
    if fmt == "m4a":
        args.update({"b:a": "128k", "movflags": "+faststart"})
    return ffmpeg.output(audio, str(dest), **args)


def video_process_command(ffmpeg_path: str, src: Path, demuxer: str, outputs: ProcessOutputs, *, duration: float,
                          has_audio: bool, opts: WebVideoOptions, accel: Accel = CPU,
                          tonemap: Tonemap | None = None) -> list[str]:
    """One decode that writes the web MP4, poster, stills and m4a that `outputs` asks for."""
    inp = open_input(src, demuxer, accel)
    wanted = [p for p in (outputs.mp4, outputs.poster, outputs.stills) if p is not None]
    nodes = []
    if wanted:
        video = _sdr(_scale_even(inp.video, opts.max_height), tonemap).filter_multi_output("split", len(wanted))
        branches = iter(range(len(wanted)))
        if outputs.mp4:
            streams = [_for_encoder(video[next(branches)], accel)] + ([inp.audio] if has_audio else [])
            nodes.append(_mp4(streams, outputs.mp4, _tagged(h264_quality_args(accel, opts.crf, opts.preset), tonemap)))
        if outputs.poster:
            nodes.append(_still(video[next(branches)], outputs.poster, poster_time(duration)))
        if outputs.stills:
            nodes.append(_still_sequence(_selected(video[next(branches)], outputs.stills), outputs.stills))
    if outputs.m4a and has_audio:
        nodes.append(_audio_file(inp.audio, outputs.m4a, "m4a"))
    return _compile(ffmpeg_path, nodes, accel)


def thumbnails_command(ffmpeg_path: str, src: Path, demuxer: str, stills: Stills, *,
                       sprite: Path | None, grid: tuple[int, int], accel: Accel = CPU,
                       tonemap: Tonemap | None = None) -> list[str]:
    """One decode that writes evenly spaced stills and, optionally, a sprite sheet of them."""
    frames = _selected(open_input(src, demuxer, accel).video, stills, tonemap)
    if sprite is None:
        return _compile(ffmpeg_path, [_still_sequence(frames, stills)])
    both = frames.filter_multi_output("split", 2)
    sheet = both[1].filter("tile", f"{grid[0]}x{grid[1]}")
    return _compile(ffmpeg_path, [_still_sequence(both[0], stills),
                                  ffmpeg.output(sheet, str(sprite), **{"q:v": 3, "frames:v": 1})])


def clips_command(ffmpeg_path: str, src: Path, demuxer: str, clips: list[Clip], *, crop: tuple[int, int] | None,
                  has_audio: bool, opts: WebVideoOptions, accel: Accel = CPU, tonemap: Tonemap | None = None) -> list[str]:
    """One decode, split and trimmed per clip: frame-accurate, re-encoded clips (optionally centre-cropped)."""
    inp = open_input(src, demuxer, accel)
    video = inp.video.filter("crop", w=crop[0], h=crop[1]) if crop else inp.video
    videos = _sdr(_scale_even(video, opts.max_height), tonemap).filter_multi_output("split", len(clips))
    audios = inp.audio.filter_multi_output("asplit", len(clips)) if has_audio else None
    nodes = []
    for i, clip in enumerate(clips):
        v = _for_encoder(videos[i].filter("trim", start=clip.start, end=clip.end).filter("setpts", "PTS-STARTPTS"),
                         accel)
        streams = [v]
        if audios is not None:
            streams.append(audios[i].filter("atrim", start=clip.start, end=clip.end).filter("asetpts", "PTS-STARTPTS"))
        nodes.append(_mp4(streams, clip.dest, _tagged(h264_quality_args(accel, opts.crf, opts.preset), tonemap)))
    return _compile(ffmpeg_path, nodes, accel)


def loudnorm_filter_args(target: tuple[float, float, float], measured: dict[str, str] | None = None) -> dict[str, Any]:
    """loudnorm options: the measuring pass prints JSON; the second applies the measured values linearly."""
    i, tp, lra = target
    args: dict[str, Any] = {"I": i, "TP": tp, "LRA": lra}
    if measured is None:
        return {**args, "print_format": "json"}
    return {**args, "measured_I": measured["input_i"], "measured_TP": measured["input_tp"],
            "measured_LRA": measured["input_lra"], "measured_thresh": measured["input_thresh"],
            "offset": measured["target_offset"], "linear": "true", "print_format": "summary"}


def loudnorm_measure_command(ffmpeg_path: str, src: Path, demuxer: str, target: tuple[float, float, float]) -> list[str]:
    """First loudnorm pass: decode the audio, print the measurement as JSON on stderr, write nothing."""
    audio = open_input(src, demuxer).audio.filter("loudnorm", **loudnorm_filter_args(target))
    argv: list[str] = ffmpeg.output(audio, "-", f="null").global_args("-hide_banner", "-v", "info") \
        .compile(cmd=ffmpeg_path)
    return argv


def audio_extract_command(ffmpeg_path: str, src: Path, demuxer: str, dest: Path, *, fmt: str, sample_rate: int,
                          channels: int, loudnorm: dict[str, Any] | None = None) -> list[str]:
    """Audio only, resampled and downmixed, optionally through loudnorm with measured values."""
    audio = open_input(src, demuxer).audio
    if loudnorm is not None:
        audio = audio.filter("loudnorm", **loudnorm)
    return _compile(ffmpeg_path, [_audio_file(audio, dest, fmt, sample_rate, channels)])


def hls_command(ffmpeg_path: str, src: Path, demuxer: str, out_dir: Path, ladder: list[Rendition], *,
                segment_seconds: float, frame_rate: float | None, has_audio: bool, preset: str,
                accel: Accel = CPU, tonemap: Tonemap | None = None, event: bool = False) -> list[str]:
    """Every rendition from one decode: split + var_stream_map, keyframes aligned; `event`: playlists kept current."""
    inp = open_input(src, demuxer, accel)
    # Tone-map once, at the top rung's (even) size: odd HDR sizes cannot be converted, and smaller is cheaper.
    video = inp.video if tonemap is None else _sdr(_scale_even(inp.video, max(r.height for r in ladder)), tonemap)
    videos = video.filter_multi_output("split", len(ladder))
    audios = inp.audio.filter_multi_output("asplit", len(ladder)) if has_audio else None
    streams, args, variants = [], _tagged(_hls_args(out_dir, segment_seconds, frame_rate, accel, event), tonemap), []
    for i, rung in enumerate(ladder):
        streams.append(_for_encoder(videos[i].filter("scale", w=rung.width, h=rung.height).filter("setsar", 1), accel))
        args.update(h264_bitrate_args(accel, i, rung.video_kbps, preset))
        if audios is not None:
            streams.append(audios[i])
        variants.append(f"v:{i},a:{i},name:{rung.name}" if audios is not None else f"v:{i},name:{rung.name}")
    args["var_stream_map"] = " ".join(variants)
    return _compile(ffmpeg_path, [ffmpeg.output(*streams, str(out_dir / "%v" / "index.m3u8"), **args)], accel)


def _tagged(args: dict[str, Any], tonemap: Tonemap | None) -> dict[str, Any]:
    return {**args, **SDR_TAGS} if tonemap is not None else args


def _hls_args(out_dir: Path, segment_seconds: float, frame_rate: float | None, accel: Accel, event: bool) -> dict[str, Any]:
    gop = gop_frames(frame_rate, segment_seconds)
    # temp_file: a segment gets its name once complete, so it is stored while the encode runs, never half-written.
    args: dict[str, Any] = {
        "f": "hls", "hls_time": segment_seconds, "hls_flags": "independent_segments+temp_file",
        "hls_playlist_type": "event" if event else "vod", "hls_segment_filename": str(out_dir / "%v" / "seg_%03d.ts"),
        "master_pl_name": "master.m3u8", "force_key_frames": keyframe_expr(segment_seconds), "g": gop, "keyint_min": gop,
        "c:a": "aac", "b:a": "128k", "ac": 2, "map_metadata": -1,
    }
    # Scene cuts would add keyframes that differ between renditions.
    if accel.encoder == "libx264":
        args["sc_threshold"] = 0
    elif accel.encoder == "h264_nvenc":
        args.update({"no-scenecut": 1, "forced-idr": 1})
    return args


def encoder_test_command(ffmpeg_path: str, accel: Accel) -> list[str]:
    """Encode one generated frame as jobs would on `accel`, and discard it: proof the encoder works here."""
    frame = _for_encoder(ffmpeg.input("color=c=black:s=256x256:d=1", f="lavfi").video, accel)
    return _compile(ffmpeg_path, [ffmpeg.output(frame, "-", f="null", vcodec=accel.encoder, vframes=1)], accel)


def sample_h264_command(ffmpeg_path: str, dest: Path) -> list[str]:
    """A tiny one-frame H.264 file for the decoder test."""
    frame = ffmpeg.input("color=c=black:s=256x256:d=1", f="lavfi").filter("format", "yuv420p")
    return _compile(ffmpeg_path, [ffmpeg.output(frame, str(dest), vcodec="libx264", vframes=1)])


def decoder_test_command(ffmpeg_path: str, hwaccel: str, sample: Path) -> list[str]:
    """Decode `sample` on the GPU; hwdownload fails if ffmpeg quietly fell back to the CPU decoder."""
    inp = ffmpeg.input(f"file:{sample}", hwaccel=hwaccel, hwaccel_output_format=hwaccel)
    frames = inp.video.filter("hwdownload").filter("format", "nv12")
    return _compile(ffmpeg_path, [ffmpeg.output(frames, "-", f="null")])


def _for_encoder(video: Any, accel: Accel) -> Any:
    """8-bit 4:2:0 frames, uploaded to the GPU when the encoder (VAAPI) wants them there."""
    if accel.device:
        return video.filter("format", "nv12").filter("hwupload")
    return video.filter("format", "yuv420p")


def _compile(ffmpeg_path: str, outputs: list[Any], accel: Accel = CPU) -> list[str]:
    device = ("-vaapi_device", accel.device) if accel.device else ()
    argv: list[str] = ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS, *device).overwrite_output() \
        .compile(cmd=ffmpeg_path)
    return argv
