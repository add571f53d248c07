"""A custom job type that writes a content type the outputs bucket does not allow (image/gif):
`doctor` must say so before any job runs (tests/integration/test_doctor_checks.py)."""

from __future__ import annotations

from handlers import register
from handlers.base import Handler, HandlerResult, InputPayload, JobContext


def run(payload: InputPayload, ctx: JobContext) -> HandlerResult:
    return HandlerResult([])


HANDLER = register(Handler("example.gif", InputPayload, run, "An animated GIF.", output_types=("image/gif",)))
