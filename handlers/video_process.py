"""video.process: a web MP4, a poster, N thumbnails and optional m4a audio, from one decode."""

from __future__ import annotations

from pydantic import Field

from handlers import register
from handlers.base import Artifact, Crf, Handler, HandlerResult, InputPayload, JobContext, LiveOutput
from handlers.stills import STILLS, plan_stills, still_artifacts
from utils.ffmpeg_commands import ProcessOutputs, WebVideoOptions, video_process_command
from utils.media_plan import Accel, fit_height
from utils.verify import Expect, duration_tolerance

THUMBNAIL_WIDTH = 320


class VideoProcessPayload(InputPayload):
    max_height: int | None = Field(default=None, ge=16, le=4320, description="overrides VIDEO_MAX_HEIGHT")
    crf: Crf | None = Field(default=None, description="overrides VIDEO_CRF (1-51)")
    thumbnails: int = Field(default=3, ge=0, le=20, description="evenly spaced JPEG thumbnails")
    audio: bool = Field(default=False, description="also write the audio track as audio.m4a")


def run(payload: VideoProcessPayload, ctx: JobContext) -> HandlerResult:
    probe = ctx.probe
    if probe.video is None:
        return _audio_only(ctx)
    opts = _web_options(payload, ctx)
    has_audio = probe.audio is not None
    video_duration = probe.video.duration or probe.duration  # the poster must fall inside the video
    outputs = ProcessOutputs(
        mp4=ctx.work_dir / "video.mp4", poster=ctx.work_dir / "poster.jpg",
        stills=plan_stills(ctx, "thumbnails", payload.thumbnails, THUMBNAIL_WIDTH) if payload.thumbnails else None,
        m4a=ctx.work_dir / "audio.m4a" if payload.audio and has_audio else None)

    def build(accel: Accel) -> list[str]:
        return video_process_command(ctx.media.ffmpeg_path, ctx.input_path, probe.demuxer, outputs,
                                     duration=video_duration, has_audio=has_audio, opts=opts, accel=accel,
                                     tonemap=ctx.tonemap)

    outcome = ctx.run_ffmpeg(build)
    notes = {} if has_audio or not payload.audio else {"note": "the input has no audio track; no audio.m4a"}
    return HandlerResult(artifacts=_artifacts(ctx, outputs, fit_height(*probe.video.display_size, opts.max_height)),
                         metadata={**outcome.metadata(), **ctx.tonemap_metadata(), **notes})


def _web_options(payload: VideoProcessPayload, ctx: JobContext) -> WebVideoOptions:
    """VIDEO_* settings with the payload's overrides."""
    defaults = ctx.media.web_video
    return WebVideoOptions(max_height=payload.max_height or defaults.max_height,
                           crf=payload.crf if payload.crf is not None else defaults.crf, preset=defaults.preset)


def _artifacts(ctx: JobContext, outputs: ProcessOutputs, size: tuple[int, int]) -> list[Artifact]:
    """What the run wrote, each with what verification must find in it."""
    return [
        Artifact(kind="video", name="video.mp4", path=ctx.work_dir / "video.mp4", content_type="video/mp4",
                 meta={"width": size[0], "height": size[1]}, expect=_mp4_expect(ctx, size, ctx.probe.audio is not None)),
        Artifact(kind="poster", name="poster.jpg", path=ctx.work_dir / "poster.jpg", content_type="image/jpeg",
                 expect=Expect(video_codec="mjpeg", size=size)),
        *(still_artifacts(outputs.stills, "thumbnails") if outputs.stills else []),
        *([_m4a_artifact(ctx)] if outputs.m4a else []),
    ]


def _mp4_expect(ctx: JobContext, size: tuple[int, int], has_audio: bool) -> Expect:
    duration = ctx.probe.duration
    return Expect(video_codec="h264", pix_fmt="yuv420p", size=size, audio_codec="aac" if has_audio else None,
                  duration=duration, tolerance=duration_tolerance(duration))


def _m4a_artifact(ctx: JobContext) -> Artifact:
    duration = (ctx.probe.audio.duration if ctx.probe.audio else None) or ctx.probe.duration
    return Artifact(kind="audio", name="audio.m4a", path=ctx.work_dir / "audio.m4a", content_type="audio/mp4",
                    expect=Expect(audio_codec="aac", no_video=True, duration=duration,
                                  tolerance=duration_tolerance(duration)))


def _audio_only(ctx: JobContext) -> HandlerResult:
    """An audio-only input: no video to transcode, so the audio outputs are the whole result."""
    outputs = ProcessOutputs(m4a=ctx.work_dir / "audio.m4a")
    web = ctx.media.web_video
    outcome = ctx.run_ffmpeg(lambda accel: video_process_command(
        ctx.media.ffmpeg_path, ctx.input_path, ctx.probe.demuxer, outputs, duration=ctx.probe.duration,
        has_audio=True, opts=web))
    return HandlerResult(artifacts=[_m4a_artifact(ctx)],
                         metadata={**outcome.metadata(), "note": "the input is audio only: wrote audio.m4a, "
                                                                 "no video, poster or thumbnails"})


HANDLER = register(Handler("video.process", VideoProcessPayload, run,
                           "Web MP4 (H.264/AAC, faststart), poster, thumbnails and optional m4a from one decode.",
                           output_types=("video/mp4", "image/jpeg", "audio/mp4"),
                           live_outputs=(LiveOutput("poster.jpg", "image/jpeg"), STILLS)))
