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
from worker import config, doctor, metrics
from worker.cli_cleanup import add_cleanup_parser, cmd_cleanup, print_storage_usage
from worker.cli_dashboard import add_dashboard_parser, cmd_dashboard
from worker.cli_wait import print_outputs, wait_for_job
from worker.cli_workers import add_workers_parser, format_age, no_live_worker_hint, print_live_workers, print_workers
from worker.config import Settings, load_settings
from worker.daemon import EXIT_CONFIG, EXIT_STARTUP_FAILED, Worker
from worker.db import JobStore, WorkerStore, apply_migrations, check_migrations_current
from worker.errors import ConfigError, JobRefused, MediaWorkerError
from worker.health import HealthState
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
    enqueue.add_argument("--wait", action="store_true",
                         help="show the job's progress until it ends, then print its outputs and signed URLs")
    jobs = sub.add_parser("jobs", help="inspect jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    show = jobs_sub.add_parser("show", help="print one job row as JSON")
    show.add_argument("id", help="job id")
    sub.add_parser("status", help="queue counts by type and status, oldest pending job, running jobs, live workers")
    add_workers_parser(sub)
    add_cleanup_parser(sub)
    for name, text in (("retry", "move a failed or cancelled job back to pending, attempts reset"),
                       ("cancel", "cancel a job (a running one stops within WORKER_HEARTBEAT_SECONDS)")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("id", help="job id")
    sub.add_parser("doctor", help="check ffmpeg, database, migrations, buckets, storage and disk; print fixes")
    add_dashboard_parser(sub)
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
    rules = load_bucket_rules(settings, url)
    choice = choose_accel(settings.ffmpeg_path, settings.ffmpeg_hwaccel)
    log_accel_choice(settings.ffmpeg_hwaccel, choice)
    metrics.HWACCEL_PATH.labels(choice.accel.name).set(1)
    storage_factory = lambda: open_storage(settings, rules)  # noqa: E731
    health = HealthState(doctor.readiness_checks(url, storage_factory, settings)) if settings.health_port else None
    worker = Worker(settings, url, media_settings(settings, choice.accel), worker_id, storage_factory=storage_factory,
                    until_idle=getattr(args, "until_idle", False), health=health)
    return worker.run()


def log_accel_choice(mode: str, choice: AccelChoice) -> None:
    """Say which ffmpeg path jobs will take, and warn when an explicit FFMPEG_HWACCEL was not met."""
    log.info("hwaccel_chosen", mode=mode, path=choice.accel.name, encoder=choice.accel.encoder,
             decoder=choice.accel.hwaccel or "cpu", checks=list(choice.reasons))
    if mode not in ("auto", "none") and choice.accel.is_cpu:
        log.warning("hwaccel_unavailable", mode=mode, fallback="cpu", checks=list(choice.reasons))


def load_bucket_rules(settings: Settings, url: str) -> dict[str, tuple[int | None, list[str] | None]]:
    store = JobStore(url, "cli", settings.worker_lease_seconds)
    try:
        return store.bucket_rules()
    finally:
        store.close()


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    findings = doctor.check_ffmpeg(settings)
    if all(f.ok for f in findings):
        findings.append(doctor.check_hwaccel(settings))
    try:
        url = database_url(settings)
    except MediaWorkerError as exc:
        findings.append(doctor.Finding("database", False, str(exc), "check DATABASE_URL"))
        url = ""
    rules: dict[str, tuple[int | None, list[str] | None]] = {}
    if url:
        findings += doctor.check_database(settings, url)
        if all(f.ok for f in findings if f.name in ("database", "migrations")):
            rules = load_bucket_rules(settings, url)
    findings.append(doctor.check_storage(settings, open_storage(settings, rules)))
    findings.append(doctor.check_temp_dir(settings))
    failures = doctor.print_findings(findings)
    print(f"\n{failures} problem(s) found" if failures else "\nall checks passed")
    return 1 if failures else 0


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
    store = open_store(settings)
    owner = str(args.user_id) if args.user_id else "anonymous"
    object_path = f"{owner}/{uuid.uuid4()}/{source.name}"
    content_type = CONTENT_TYPES.get(source.suffix.lower(), "application/octet-stream")
    storage = open_storage(settings, store.bucket_rules())
    storage.upload_file(INPUT_BUCKET, object_path, source, content_type)
    payload = {**extra, "input": {"bucket": INPUT_BUCKET, "path": object_path}}
    try:
        job = store.insert_job(args.type, payload, user_id=args.user_id, priority=args.priority)
    except JobRefused:
        storage.delete(INPUT_BUCKET, [object_path])  # no job will ever read it
        raise
    print(job.id, flush=True)
    if not args.wait:
        return 0
    final = wait_for_job(store, job.id, lambda: no_live_worker_hint(store, settings, args.type))
    print_outputs(final, storage)
    return 0 if final.status == "completed" else 1


def job_id_argument(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ConfigError([f"job id {text!r} is not a UUID"]) from None


def open_store(settings: Settings) -> WorkerStore:
    return WorkerStore(connect_database(settings), new_worker_id(), settings.worker_lease_seconds)


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    job_id = job_id_argument(args.id)
    job = open_store(settings).get_job(job_id)
    if job is None:
        print(f"no job {job_id}", file=sys.stderr)
        return 1
    row = {k: v for k, v in asdict(job).items() if k != "taken_back"}  # a claim's flag, not a column
    print(json.dumps(row, indent=2, default=str))
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    store = open_store(settings)
    counts, running = store.queue_counts(), store.running_jobs()
    print(f"{'type':<24} {'status':<11} {'jobs':>8}  oldest pending")
    for row in counts:
        oldest = row["oldest_pending_seconds"]
        print(f"{row['type']:<24} {row['status']:<11} {row['jobs']:>8}  "
              f"{format_age(float(oldest)) if oldest is not None else ''}")
    print(f"\nrunning: {len(running)}")
    for row in running:
        print(f"  {row['id']}  {row['type']:<18} {row['progress']:5.1f}% {row['stage'] or '':<12} "
              f"attempt {row['attempts']}/{row['max_attempts']}  {format_age(float(row['running_seconds']))} "
              f"on {row['locked_by']} (lease {float(row['lease_left_seconds']):.0f}s left)")
    cap = settings.worker_max_running_per_user
    held = store.owners_at_cap(cap) if cap else []
    if held:  # these jobs stay pending with stage 'waiting for owner cap'
        print(f"\nwaiting for the owner cap (WORKER_MAX_RUNNING_PER_USER={cap}):")
    for row in held:
        print(f"  owner {row['owner'] or '(none)'}: {row['running']} running, {row['waiting']} due job(s) held back")
    print_live_workers(store, settings, sorted({row["type"] for row in counts}))
    print_storage_usage(settings, store.url)
    return 0


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    job_id = job_id_argument(args.id)
    if not open_store(settings).retry_job(job_id):
        print(f"job {job_id} is not failed or cancelled (or does not exist); nothing to retry", file=sys.stderr)
        return 1
    print(f"job {job_id} is pending again")
    return 0


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    job_id = job_id_argument(args.id)
    status = open_store(settings).request_cancel(job_id)
    if status not in ("cancelled", "processing"):
        print(f"job {job_id} " + (f"is already {status}" if status else "does not exist") + "; nothing to cancel",
              file=sys.stderr)
        return 1
    print(f"job {job_id}: " + ("cancelled" if status == "cancelled" else
                               "cancel requested; its worker stops it within WORKER_HEARTBEAT_SECONDS"))
    return 0


def cmd_workers(settings: Settings, args: argparse.Namespace) -> int:
    return print_workers(open_store(settings), settings)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for name, value in settings.describe().items():
        print(f"{name}={value}")
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run, "migrate": cmd_migrate, "enqueue": cmd_enqueue, "jobs": cmd_jobs, "status": cmd_status,
    "retry": cmd_retry, "cancel": cmd_cancel, "doctor": cmd_doctor, "config": cmd_config, "workers": cmd_workers,
    "dashboard": cmd_dashboard,
    "cleanup": lambda settings, args: cmd_cleanup(settings, args, connect_database(settings)),
}

