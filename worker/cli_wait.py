"""`enqueue --wait`: follow a job until it ends, saying so when no live worker takes its type."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

from utils.storage import Storage
from worker.db import Job, JobStore

SIGNED_URL_SECONDS = 3600
HINT_EVERY_SECONDS = 5.0


def wait_for_job(store: JobStore, job_id: uuid.UUID, hint: Callable[[], str | None] = lambda: None,
                 poll_seconds: float = 0.5) -> Job:
    """Draw a progress bar on stderr until the job ends; return its final row. While the job is
    pending, `hint` is asked every few seconds for a line to show (once) and the wait goes on."""
    next_hint, hinted = 0.0, False
    while True:
        job = store.get_job(job_id)
        assert job is not None
        if job.status == "pending" and not hinted and time.monotonic() >= next_hint:
            next_hint = time.monotonic() + HINT_EVERY_SECONDS
            message = hint()
            if message:
                sys.stderr.write(f"\r{message}\n")
                hinted = True
        sys.stderr.write(f"\r{progress_line(job.progress, job.status, job.stage)}")
        sys.stderr.flush()
        if job.status in ("completed", "failed", "cancelled"):
            sys.stderr.write("\n")
            return job
        time.sleep(poll_seconds)


def progress_line(progress: float, status: str, stage: str | None) -> str:
    """`[####......]  42.0% processing` — the stage only when it says more than the status."""
    filled = int(progress / 5)
    words = status if stage in (None, "", status) else f"{status} ({stage})"
    return f"[{'#' * filled}{'.' * (20 - filled)}] {progress:5.1f}% {words:<28}"


def print_outputs(job: Job, storage: Storage) -> None:
    if job.status != "completed":
        print(f"job {job.status}: {job.error}")
        return
    for out in (job.result or {}).get("outputs", []):
        url = storage.signed_url(out["bucket"], out["path"], SIGNED_URL_SECONDS)
        print(f"{out['kind']:<10} {out['bucket']}/{out['path']}  {out['size']} bytes\n           {url}")
