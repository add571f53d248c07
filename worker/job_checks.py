"""Checks on a job's input and outputs that need no I/O of their own: whose file it may read,
what Postgres can store, and whether the outputs are what the handler promised."""

from __future__ import annotations

import json
from typing import Any

from handlers.base import Artifact, InputPayload
from utils.verify import verify_output
from worker.db import ClaimedJob
from worker.errors import InvalidPayload, PermanentJobError
from worker.runtime import INPUT_BUCKET


def verify_artifacts(ffprobe: str, artifacts: list[Artifact]) -> None:
    """ffprobe every output that states expectations; raise MediaError on the first that fails them."""
    for artifact in artifacts:
        if artifact.expect is not None and artifact.path.is_file():
            verify_output(ffprobe, artifact.path, artifact.expect, artifact.name)


def check_storable(job_type: str, parts: list[Any]) -> None:
    """Fail the job, naming its handler, if its result holds what Postgres jsonb refuses (NaN,
    Infinity, NUL characters, objects JSON cannot hold): the queue round that recorded it would
    fail, and with it the completions of every other job in that round."""
    try:
        text = json.dumps(parts, allow_nan=False)
    except ValueError:
        problem = "NaN or Infinity"
    except TypeError as exc:
        problem = f"a value JSON cannot hold ({exc})"
    else:
        if "\\u0000" not in text or not _holds_nul(parts):
            return
        problem = "a NUL character"
    raise PermanentJobError(f"the {job_type} handler returned {problem} in its result, which Postgres cannot "
                            "store: fix the handler")


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


def check_input_owner(job: ClaimedJob, payload: InputPayload) -> None:
    """The worker reads with a service key; refuse inputs outside the job owner's folder in media-uploads."""
    if payload.input.bucket != INPUT_BUCKET:
        raise InvalidPayload(f"payload.input.bucket {payload.input.bucket!r} is not allowed: "
                             f"inputs must be uploaded to {INPUT_BUCKET}")
    folder = job.owner_folder
    parts = payload.input.path.split("/")
    if len(parts) < 2 or parts[0] != folder or ".." in parts:
        raise InvalidPayload(
            f"payload.input.path {payload.input.path!r} is outside the job owner's folder {folder}/: "
            f"upload the file under {folder}/ and submit the job again")
