"""video.clips: frame-accurate, re-encoded clips from one decode; optionally a centre-cropped 9:16 short."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext, Payload
from handlers.errors import InvalidPayload
from utils.ffmpeg import MediaError
from utils.ffmpeg_commands import Clip, WebVideoOptions, clips_command
from utils.media_plan import Accel, centre_crop, fit_height
from utils.verify import Expect

ASPECTS = {"9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}
END_SLACK_SECONDS = 0.05  # container durations are rounded; an end this close to it is "the end"


class Segment(Payload):
    start: float = Field(ge=0, description="seconds")
    end: float = Field(gt=0, description="seconds; after start, within the input's duration")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="file name without .mp4")

    @model_validator(mode="after")
    def _end_after_start(self) -> Segment:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class ClipsPayload(InputPayload):
    segments: list[Segment] = Field(min_length=1, max_length=20)
    aspect: Literal["9:16", "1:1", "4:5"] | None = Field(default=None, description="centre crop, e.g. 9:16 shorts")
    max_height: int | None = Field(default=None, ge=16, le=4320, description="overrides VIDEO_MAX_HEIGHT")

    @model_validator(mode="after")
    def _unique_names(self) -> ClipsPayload:
        names = [clip_name(i, s) for i, s in enumerate(self.segments)]
        if len(set(names)) != len(names):
            raise ValueError("segment names must be unique")
        return self


def clip_name(index: int, segment: Segment) -> str:
    return segment.name or f"clip_{index + 1:02d}"


def check_segments(segments: list[Segment], duration: float) -> None:
    """Raise InvalidPayload naming the first segment that does not lie within the input."""
    for i, seg in enumerate(segments):
        if seg.end > duration + END_SLACK_SECONDS:
            raise InvalidPayload(f"payload.segments.{i} ({clip_name(i, seg)}: {seg.start}-{seg.end}s) ends after "
                                 f"the input, which lasts {duration:.3f}s")


def run(payload: ClipsPayload, ctx: JobContext) -> HandlerResult:
    video = ctx.probe.video
    if video is None:
        raise MediaError("the input has no video stream to cut clips from")
    check_segments(payload.segments, ctx.probe.duration)
    web = ctx.media.web_video
    opts = WebVideoOptions(payload.max_height or web.max_height, web.crf, web.preset)
    crop = centre_crop(*video.display_size, ASPECTS[payload.aspect]) if payload.aspect else None
    size = fit_height(*(crop or video.display_size), opts.max_height)
    (ctx.work_dir / "clips").mkdir(exist_ok=True)
    clips = [Clip(ctx.work_dir / "clips" / f"{clip_name(i, s)}.mp4", s.start, min(s.end, ctx.probe.duration))
             for i, s in enumerate(payload.segments)]

    def build(accel: Accel) -> list[str]:
        return clips_command(ctx.media.ffmpeg_path, ctx.input_path, ctx.probe.demuxer, clips, crop=crop,
                             has_audio=ctx.probe.audio is not None, opts=opts, accel=accel, tonemap=ctx.tonemap)

    outcome = ctx.run_ffmpeg(build)
    audio = "aac" if ctx.probe.audio is not None else None
    artifacts = [Artifact(kind="clip", name=f"clips/{c.dest.name}", path=c.dest, content_type="video/mp4",
                          meta={"start": c.start, "end": c.end, "width": size[0], "height": size[1]},
                          expect=Expect(video_codec="h264", pix_fmt="yuv420p", size=size, audio_codec=audio,
                                        duration=c.end - c.start, tolerance=0.25))
                 for c in clips]
    return HandlerResult(artifacts=artifacts, metadata={**outcome.metadata(), **ctx.tonemap_metadata()})


HANDLER = register(Handler("video.clips", ClipsPayload, run,
                           "Frame-accurate re-encoded clips from one decode; optional centre crop (9:16).",
                           output_types=("video/mp4",)))
