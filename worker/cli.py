"""Command line: `python worker.py [command]`. Every command has --help."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from handlers import load_handlers
from utils.ffmpeg import MediaError, ffmpeg_version
from utils.hwaccel import AccelChoice, choose_accel
from utils.storage import StorageError
from worker import config
from worker.config import Settings, load_settings
from worker.daemon import EXIT_CONFIG, EXIT_STARTUP_FAILED, Worker
from worker.db import JobStore, apply_migrations, check_migrations_current
from worker.errors import ConfigError, MediaWorkerError
from worker.logs import configure_logging, log
from worker.runtime import INPUT_BUCKET, database_url, media_settings, new_worker_id, open_storage

CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
                 ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".ts": "video/mp2t",
                 ".3gp": "video/3gpp", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".wav": "audio/wav",
                 ".flac": "audio/flac", ".ogg": "audio/ogg", ".aac": "audio/aac"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python worker.py",
        description="Supabase media worker: claims jobs from public.media_jobs, runs ffmpeg, uploads results. "
                    "With no command it runs the daemon until SIGINT/SIGTERM.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the worker daemon (the default command)")
    run.add_argument("--until-idle", action="store_true", help="drain the queue, then exit 0")
    sub.add_parser("migrate", help="apply pending supabase/migrations to the database")
    enqueue = sub.add_parser("enqueue", help="upload a local file to media-uploads and insert a job")
    enqueue.add_argument("type", help="job type, e.g. video.process")
    enqueue.add_argument("--input", required=True, type=Path, help="local media file to upload as the input")
    enqueue.add_argument("--payload", default="{}", help="extra payload keys as a JSON object")
    enqueue.add_argument("--priority", type=int, default=0, help="higher runs first (10 high, -10 low)")
    enqueue.add_argument("--user-id", type=uuid.UUID, default=None, help="owner (an auth.users id)")
    jobs = sub.add_parser("jobs", help="inspect jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    show = jobs_sub.add_parser("show", help="print one job row as JSON")
    show.add_argument("id", help="job id")
    cfg = sub.add_parser("config", help="print every setting (secrets masked)")
    cfg.add_argument("--markdown", action="store_true", help="print the README's variable table instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "config" and args.markdown:
        print(config.markdown_table())
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    command: Callable[[Settings, argparse.Namespace], int] = COMMANDS[args.command or "run"]
    try:
        return command(settings, args)
    except (MediaWorkerError, StorageError, MediaError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_STARTUP_FAILED


def connect_database(settings: Settings) -> str:
    """The database URL, migrated: automatically for the embedded database, checked otherwise."""
    url = database_url(settings)
    if settings.database_url:
        check_migrations_current(url)
    else:
        for name in apply_migrations(url):
            log.info("migration_applied", migration=name)
    return url


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    ffmpeg_version(settings.ffmpeg_path)
    ffmpeg_version(settings.ffprobe_path)
    handlers = load_handlers(settings.worker_handler_modules)
    unknown = set(settings.worker_job_types) - set(handlers)
    if unknown:
        raise ConfigError([f"WORKER_JOB_TYPES: unknown type(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(handlers))}"])
    url = connect_database(settings)
    worker_id = new_worker_id()
    rules = JobStore(url, worker_id, settings.worker_lease_seconds).bucket_rules()
    choice = choose_accel(settings.ffmpeg_path, settings.ffmpeg_hwaccel)
    log_accel_choice(settings.ffmpeg_hwaccel, choice)
    worker = Worker(settings, url, media_settings(settings, choice.accel), worker_id,
                    storage_factory=lambda: open_storage(settings, rules),
                    until_idle=getattr(args, "until_idle", False))
    return worker.run()


def log_accel_choice(mode: str, choice: AccelChoice) -> None:
    """Say which ffmpeg path jobs will take, and warn when an explicit FFMPEG_HWACCEL was not met."""
    log.info("hwaccel_chosen", mode=mode, path=choice.accel.name, encoder=choice.accel.encoder,
             decoder=choice.accel.hwaccel or "cpu", checks=list(choice.reasons))
    if mode not in ("auto", "none") and choice.accel.is_cpu:
        log.warning("hwaccel_unavailable", mode=mode, fallback="cpu", checks=list(choice.reasons))


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    url = database_url(settings)
    applied = apply_migrations(url)
    print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))
    return 0


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    source: Path = args.input
    if not source.is_file():
        raise ConfigError([f"--input {source}: no such file"])
    try:
        extra = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"--payload: not valid JSON ({exc})"]) from None
    if not isinstance(extra, dict):
        raise ConfigError(["--payload: must be a JSON object"])
    url = connect_database(settings)
    store = JobStore(url, new_worker_id(), settings.worker_lease_seconds)
    owner = str(args.user_id) if args.user_id else "anonymous"
    object_path = f"{owner}/{uuid.uuid4()}/{source.name}"
    content_type = CONTENT_TYPES.get(source.suffix.lower(), "application/octet-stream")
    open_storage(settings, store.bucket_rules()).upload_file(INPUT_BUCKET, object_path, source, content_type)
    payload = {**extra, "input": {"bucket": INPUT_BUCKET, "path": object_path}}
    job = store.insert_job(args.type, payload, user_id=args.user_id, priority=args.priority)
    print(job.id)
    return 0


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    try:
        job_id = uuid.UUID(args.id)
    except ValueError:
        raise ConfigError([f"job id {args.id!r} is not a UUID"]) from None
    store = JobStore(connect_database(settings), new_worker_id(), settings.worker_lease_seconds)
    job = store.get_job(job_id)
    if job is None:
        print(f"no job {job_id}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(job), indent=2, default=str))
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for name, value in settings.describe().items():
        print(f"{name}={value}")
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run, "migrate": cmd_migrate, "enqueue": cmd_enqueue, "jobs": cmd_jobs, "config": cmd_config,
}

