"""The job commands: `enqueue`, `jobs show`, `jobs list`, `retry`, `cancel`.

Arguments are checked by argparse types, so a bad one is a usage error (exit 2) before anything
is read, uploaded or inserted; `enqueue` also checks the type and payload with the worker's own
schemas first, so a doomed job is never uploaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from handlers import get_handler, load_handlers
from handlers.errors import InvalidPayload, UnknownJobType
from worker.cli_wait import print_outputs, wait_for_job
from worker.cli_workers import format_age, no_live_worker_hint
from worker.config import Settings
from worker.db import WorkerStore
from worker.errors import JobRefused
from worker.runtime import INPUT_BUCKET, open_storage

CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
                 ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".ts": "video/mp2t",
                 ".3gp": "video/3gpp", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".wav": "audio/wav",
                 ".flac": "audio/flac", ".ogg": "audio/ogg", ".aac": "audio/aac"}
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
EXIT_INTERRUPTED = 130


def job_id(text: str) -> uuid.UUID:
    """argparse type: a job id."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a UUID such as "
                                         "0b6f3c1e-8a4d-4c55-9f1e-2d7a5b9c0e11)") from None


def existing_file(text: str) -> Path:
    """argparse type: a local file that exists."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"thumbnails\": 5}'")
    return value


def since(text: str) -> timedelta:
    """argparse type: an age such as 30m, 2h or 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r}: give an age such as 30m, 2h or 7d") from None


def add_job_parsers(sub: Any) -> None:
    enqueue = sub.add_parser("enqueue", help="check a job against its schema, upload its input and insert it")
    enqueue.add_argument("type", help="job type, e.g. video.process")
    enqueue.add_argument("--input", type=existing_file, help="local media file to upload as the input "
                                                             "(for job types that read one)")
    enqueue.add_argument("--payload", type=json_object, default={}, help="extra payload keys as a JSON object")
    enqueue.add_argument("--priority", type=int, default=0, help="higher runs first (10 high, -10 low)")
    enqueue.add_argument("--user-id", type=uuid.UUID, default=None, help="owner (an auth.users id)")
    enqueue.add_argument("--wait", action="store_true",
                         help="show the job's progress until it ends, then print its outputs and signed URLs")
    jobs = sub.add_parser("jobs", help="inspect jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    show = jobs_sub.add_parser("show", help="print one job row as JSON")
    show.add_argument("id", type=job_id, help="job id")
    listing = jobs_sub.add_parser("list", help="recent jobs: id, type, status, attempts, age, first error line")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument("--type", help="only jobs of this type")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (newest first; default 50)")
    listing.add_argument("--since", type=since, help="only jobs created within this age, e.g. 2h or 7d")
    for name, text in (("retry", "move a failed or cancelled job back to pending, attempts reset"),
                       ("cancel", "cancel a job (a running one stops within WORKER_HEARTBEAT_SECONDS)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("id", type=job_id, help="job id")


def checked_payload(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """The job's payload, checked against its type's schema as the worker will check it; raise
    ArgumentTypeError before anything is uploaded or inserted."""
    owner = str(args.user_id) if args.user_id else "anonymous"
    load_handlers(settings.worker_handler_modules)
    try:
        handler = get_handler(args.type)
    except UnknownJobType as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if handler.needs_input and args.input is None:
        raise argparse.ArgumentTypeError(f"{args.type} reads an input file: give it with --input FILE")
    if not handler.needs_input and args.input is not None:
        raise argparse.ArgumentTypeError(f"{args.type} reads no input file: leave out --input")
    payload = dict(args.payload)
    if args.input is not None:
        payload["input"] = {"bucket": INPUT_BUCKET, "path": f"{owner}/{uuid.uuid4()}/{args.input.name}"}
    try:
        handler.parse_payload(payload)
    except InvalidPayload as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return payload


def cmd_enqueue(settings: Settings, args: argparse.Namespace, store: WorkerStore, payload: dict[str, Any]) -> int:
    """Upload the input named by the checked `payload` (checked_payload), insert the job, maybe wait."""
    storage = open_storage(settings, store.bucket_rules())
    uploaded = payload.get("input", {}).get("path")
    if uploaded:
        storage.upload_file(INPUT_BUCKET, uploaded, args.input,
                            CONTENT_TYPES.get(args.input.suffix.lower(), "application/octet-stream"))
    try:
        job = store.insert_job(args.type, payload, user_id=args.user_id, priority=args.priority)
    except JobRefused:
        if uploaded:
            storage.delete(INPUT_BUCKET, [uploaded])  # no job will ever read it
        raise
    try:
        print(job.id, flush=True)
        if not args.wait:
            return 0
        final = wait_for_job(store, job.id, lambda: no_live_worker_hint(store, settings, args.type))
    except KeyboardInterrupt:
        print(f"\nstopped waiting; job {job.id} carries on. Follow it with: python worker.py jobs show {job.id}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print_outputs(final, storage)
    return 0 if final.status == "completed" else 1


def cmd_jobs(settings: Settings, args: argparse.Namespace, store: WorkerStore) -> int:
    if args.jobs_command == "list":
        return list_jobs(store, args)
    job = store.get_job(args.id)
    if job is None:
        print(f"no job {args.id}", file=sys.stderr)
        return 1
    row = {k: v for k, v in asdict(job).items() if k != "taken_back"}  # a claim's flag, not a column
    print(json.dumps(row, indent=2, default=str))
    return 0


def list_jobs(store: WorkerStore, args: argparse.Namespace) -> int:
    after = datetime.now(UTC) - args.since if args.since else None
    rows = store.list_jobs(args.status, args.type, after, args.limit)
    print(f"{'id':<36}  {'type':<18} {'status':<10} {'tries':>5} {'age':>6}  error")
    now = datetime.now(UTC)
    for row in rows:
        first_line = (row["error"] or "").splitlines()[0] if row["error"] else ""
        print(f"{row['id']!s:<36}  {row['type']:<18} {row['status']:<10} "
              f"{row['attempts']:>2}/{row['max_attempts']:<2} {format_age((now - row['created_at']).total_seconds()):>6}"
              f"  {first_line[:100]}")
    if not rows:
        print("no jobs match")
    return 0


def cmd_retry(settings: Settings, args: argparse.Namespace, store: WorkerStore) -> int:
    if not store.retry_job(args.id):
        print(f"job {args.id} is not failed or cancelled (or does not exist); nothing to retry", file=sys.stderr)
        return 1
    print(f"job {args.id} is pending again")
    return 0


def cmd_cancel(settings: Settings, args: argparse.Namespace, store: WorkerStore) -> int:
    status = store.request_cancel(args.id)
    if status not in ("cancelled", "processing"):
        print(f"job {args.id} " + (f"is already {status}" if status else "does not exist") + "; nothing to cancel",
              file=sys.stderr)
        return 1
    print(f"job {args.id}: " + ("cancelled" if status == "cancelled" else
                                "cancel requested; its worker stops it within WORKER_HEARTBEAT_SECONDS"))
    return 0
