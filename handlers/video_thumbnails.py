"""video.thumbnails: evenly spaced stills, an optional sprite sheet and a WebVTT storyboard."""

from __future__ import annotations

from pydantic import Field, model_validator

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext
from handlers.stills import STILLS, plan_stills, still_artifacts
from utils.ffmpeg import MediaError
from utils.ffmpeg_commands import thumbnails_command
from utils.media_plan import Accel, sprite_grid, storyboard_vtt
from utils.verify import Expect


class ThumbnailsPayload(InputPayload):
    count: int = Field(default=10, ge=1, le=100, description="how many stills")
    width: int = Field(default=160, ge=16, le=1920, description="still width in pixels (never upscaled)")
    sprite: bool = Field(default=False, description="also tile the stills into sprite.jpg")
    columns: int = Field(default=5, ge=1, le=20, description="sprite sheet columns")
    storyboard: bool = Field(default=False, description="also write storyboard.vtt (needs sprite)")

    @model_validator(mode="after")
    def _storyboard_needs_sprite(self) -> ThumbnailsPayload:
        if self.storyboard and not self.sprite:
            raise ValueError("storyboard needs sprite: true (its cues point into the sprite sheet)")
        return self


def run(payload: ThumbnailsPayload, ctx: JobContext) -> HandlerResult:
    if ctx.probe.video is None:
        raise MediaError("the input has no video stream, so it has no thumbnails; use audio.extract for audio")
    stills = plan_stills(ctx, "thumbnails", payload.count, payload.width)
    grid = sprite_grid(payload.count, payload.columns)
    sprite = ctx.work_dir / "sprite.jpg" if payload.sprite else None

    def build(accel: Accel) -> list[str]:
        return thumbnails_command(ctx.media.ffmpeg_path, ctx.input_path, ctx.probe.demuxer, stills,
                                  sprite=sprite, grid=grid, accel=accel, tonemap=ctx.tonemap)

    outcome = ctx.run_ffmpeg(build)
    thumbs = still_artifacts(stills, "thumbnails")
    artifacts = list(thumbs)
    w, h = stills.size
    if sprite is not None:
        artifacts.append(Artifact(kind="sprite", name="sprite.jpg", path=sprite, content_type="image/jpeg",
                                  meta={"columns": grid[0], "rows": grid[1], "tile_width": w, "tile_height": h},
                                  expect=Expect(video_codec="mjpeg", size=(w * grid[0], h * grid[1]))))
    if payload.storyboard:
        vtt = ctx.work_dir / "storyboard.vtt"
        vtt.write_text(storyboard_vtt(ctx.probe.duration, len(thumbs), stills.size, grid[0], "sprite.jpg"))
        artifacts.append(Artifact(kind="storyboard", name="storyboard.vtt", path=vtt, content_type="text/vtt"))
    return HandlerResult(artifacts=artifacts, metadata={**outcome.metadata(), **ctx.tonemap_metadata()})


HANDLER = register(Handler("video.thumbnails", ThumbnailsPayload, run,
                           "Evenly spaced JPEG stills, optional sprite sheet and WebVTT storyboard.",
                           output_types=("image/jpeg", "text/vtt"), live_outputs=(STILLS,)))
