"""A test-only job type, `test.blob`: writes the same pseudo-random bytes on every run.

Loaded by worker subprocesses through WORKER_HANDLER_MODULES=tests.blob_handler, so a
job retried after a crash produces a byte-identical output, as a deterministic encode would.
"""

from __future__ import annotations

import random

from handlers import register
from handlers.base import Artifact, Handler, HandlerResult, InputPayload, JobContext

BLOCK = 1024 * 1024


class BlobPayload(InputPayload):
    size_bytes: int


def run(payload: BlobPayload, ctx: JobContext) -> HandlerResult:
    rng = random.Random(7)
    path = ctx.work_dir / "blob.mp4"
    with open(path, "wb") as f:
        left = payload.size_bytes
        while left:
            n = min(BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n
    return HandlerResult([Artifact("video", "blob.mp4", path, "video/mp4")])


HANDLER = register(Handler("test.blob", BlobPayload, run, "deterministic bytes, for storage tests"))
