"""video.process: probe metadata, a web MP4 and a poster JPEG, from one decode."""

from __future__ import annotations

from pydantic import Field

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext
from utils.ffmpeg import run_ffmpeg
from utils.ffmpeg_commands import WebVideoOptions, video_process_command


class VideoProcessPayload(InputPayload):
    max_height: int | None = Field(default=None, ge=16, le=4320, description="overrides VIDEO_MAX_HEIGHT")
    crf: int | None = Field(default=None, ge=0, le=51, description="overrides VIDEO_CRF")


def run(payload: VideoProcessPayload, ctx: JobContext) -> HandlerResult:
    probe = ctx.probe
    if probe.video is None:
        return HandlerResult(artifacts=[], metadata={"note": "the input has no video stream; nothing to transcode"})
    defaults = ctx.media.web_video
    opts = WebVideoOptions(max_height=payload.max_height or defaults.max_height,
                           crf=payload.crf if payload.crf is not None else defaults.crf, preset=defaults.preset)
    mp4, poster = ctx.work_dir / "video.mp4", ctx.work_dir / "poster.jpg"
    argv = video_process_command(ctx.media.ffmpeg_path, ctx.input_path, probe.demuxer, mp4=mp4, poster=poster,
                                 duration=probe.duration, has_audio=probe.audio is not None, opts=opts)
    run_ffmpeg(argv, duration=probe.duration, limits=ctx.media.run_limits(probe.duration),
               on_progress=ctx.report_progress, should_stop=ctx.should_stop)
    return HandlerResult(artifacts=[
        Artifact(kind="video", name="video.mp4", path=mp4, content_type="video/mp4"),
        Artifact(kind="poster", name="poster.jpg", path=poster, content_type="image/jpeg"),
    ])


HANDLER = register(Handler("video.process", VideoProcessPayload, run,
                           "Web MP4 (H.264/AAC, faststart) and a poster JPEG from one decode."))
