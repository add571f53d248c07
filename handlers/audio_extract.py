"""audio.extract: the audio track for speech-to-text or analysis (16 kHz mono WAV by default), optional loudnorm."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext
from utils.ffmpeg import MediaError
from utils.ffmpeg_commands import AUDIO_CODECS, audio_extract_command, loudnorm_filter_args, loudnorm_measure_command
from utils.media_plan import parse_loudnorm
from utils.verify import Expect, duration_tolerance

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "m4a": "audio/mp4"}


class AudioExtractPayload(InputPayload):
    format: Literal["wav", "flac", "m4a"] = Field(default="wav", description="wav, flac or m4a")
    sample_rate: int = Field(default=16000, ge=8000, le=48000, description="Hz")
    channels: int = Field(default=1, ge=1, le=2, description="1 (mono) or 2")
    loudnorm: bool = Field(default=False, description="two-pass EBU R128 loudness normalisation")
    loudness_target: float = Field(default=-16.0, ge=-70, le=-5, description="integrated loudness, LUFS")


def run(payload: AudioExtractPayload, ctx: JobContext) -> HandlerResult:
    if ctx.probe.audio is None:
        raise MediaError("the input has no audio stream to extract")
    ffmpeg, src, demuxer = ctx.media.ffmpeg_path, ctx.input_path, ctx.probe.demuxer
    dest = ctx.work_dir / f"audio.{payload.format}"
    metadata: dict[str, object] = {}
    loudnorm = None
    if payload.loudnorm:
        target = (payload.loudness_target, -1.5, 11.0)
        measuring = ctx.run_ffmpeg(lambda _: loudnorm_measure_command(ffmpeg, src, demuxer, target), share=(0, 0.5))
        measured = parse_loudnorm(measuring.stderr)
        if measured is None:
            metadata["note"] = "loudness could not be measured (silent input?); audio left as it is"
        else:
            loudnorm = loudnorm_filter_args(target, measured)
            metadata["loudness_measured"] = measured
    outcome = ctx.run_ffmpeg(lambda _: audio_extract_command(
        ffmpeg, src, demuxer, dest, fmt=payload.format, sample_rate=payload.sample_rate,
        channels=payload.channels, loudnorm=loudnorm), share=(0.5, 1.0) if payload.loudnorm else (0.0, 1.0))
    duration = ctx.probe.audio.duration or ctx.probe.duration
    expect = Expect(audio_codec=AUDIO_CODECS[payload.format], no_video=True, duration=duration,
                    tolerance=duration_tolerance(duration))
    artifact = Artifact(kind="audio", name=dest.name, path=dest, content_type=CONTENT_TYPES[payload.format],
                        meta={"sample_rate": payload.sample_rate, "channels": payload.channels}, expect=expect)
    return HandlerResult(artifacts=[artifact], metadata={**outcome.metadata(), **metadata})


HANDLER = register(Handler("audio.extract", AudioExtractPayload, run,
                           "Audio only: 16 kHz mono WAV/FLAC or m4a, optional two-pass loudnorm.",
                           output_types=tuple(CONTENT_TYPES.values())))
