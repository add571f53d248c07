"""media.probe: metadata only; no ffmpeg run and no output files."""

from __future__ import annotations

from typing import Any

from handlers import register
from handlers.base import Handler, HandlerResult, InputPayload, JobContext

STREAM_KEYS = ("index", "codec_type", "codec_name", "profile", "width", "height", "pix_fmt", "sample_rate",
               "channels", "channel_layout", "duration", "bit_rate", "avg_frame_rate")


def run(payload: InputPayload, ctx: JobContext) -> HandlerResult:
    streams: list[dict[str, Any]] = [{k: s[k] for k in STREAM_KEYS if k in s} for s in ctx.probe.raw.get("streams", [])]
    return HandlerResult(artifacts=[], metadata={"stream_details": streams})


HANDLER = register(Handler("media.probe", InputPayload, run, "Probe metadata only (format, streams); no outputs."))
