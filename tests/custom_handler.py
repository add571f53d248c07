"""A tiny custom job type, loaded by tests through WORKER_HANDLER_MODULES=tests.custom_handler.

It is the example in docs/handlers.md: a payload schema, a function of (payload, ctx)
that runs ffmpeg through ctx and returns artifacts, and one register() call.
"""

from __future__ import annotations

from pydantic import Field

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext
from utils.verify import Expect


class GrayPosterPayload(InputPayload):
    width: int = Field(default=64, ge=16, le=1920, description="poster width in pixels")


def run(payload: GrayPosterPayload, ctx: JobContext) -> HandlerResult:
    dest = ctx.work_dir / "gray.jpg"
    argv = [ctx.media.ffmpeg_path, "-hide_banner", "-v", "error", *ctx.input_args,
            "-vf", f"scale={payload.width}:-2,format=gray", "-frames:v", "1", "-y", str(dest)]
    ctx.run_ffmpeg(lambda accel: argv)
    return HandlerResult(artifacts=[Artifact(kind="poster", name="gray.jpg", path=dest, content_type="image/jpeg",
                                             expect=Expect(video_codec="mjpeg"))],
                         metadata={"label": "gray poster"})


HANDLER = register(Handler("example.gray_poster", GrayPosterPayload, run, "A grayscale poster (custom handler example).",
                           output_types=("image/jpeg",)))
