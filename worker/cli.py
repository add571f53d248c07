"""Command line: `python worker.py [command]`. Every command has --help."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from handlers import load_handlers
from utils.ffmpeg import MediaError, ffmpeg_version
from utils.hwaccel import AccelChoice, choose_accel
from utils.redaction import redact
from utils.storage import StorageError
from worker import cli_jobs, config, doctor, metrics
from worker.cli_cleanup import add_cleanup_parser, cmd_cleanup, print_storage_usage
from worker.cli_dashboard import add_dashboard_parser, cmd_dashboard
from worker.cli_workers import add_workers_parser, format_age, print_live_workers, print_workers
from worker.config import Settings, load_settings, mask, storage_refusal
from worker.daemon import EXIT_CONFIG, EXIT_STARTUP_FAILED, Worker
from worker.db import JobStore, WorkerStore, apply_migrations, check_migrations_current
from worker.db.embedded import embedded_database_exists
from worker.errors import ConfigError, MediaWorkerError, NoDatabaseHere
from worker.health import HealthState
from worker.logs import configure_logging, log
from worker.runtime import OUTPUT_BUCKET, database_url, local_storage_root, media_settings, new_worker_id, open_storage

EXIT_NOTHING_HERE = 1
ENV_FILE = ".env"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python worker.py",
        description="Supabase media worker: claims jobs from public.media_jobs, runs ffmpeg, uploads results. "
                    "With no command it runs the daemon until SIGINT/SIGTERM.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the worker daemon (the default command)")
    run.add_argument("--until-idle", action="store_true", help="drain the queue, then exit 0")
    sub.add_parser("migrate", help="apply pending supabase/migrations to the database")
    cli_jobs.add_job_parsers(sub)
    sub.add_parser("status", help="queue counts by type and status, oldest pending job, running jobs, live workers")
    add_workers_parser(sub)
    add_cleanup_parser(sub)
    sub.add_parser("doctor", help="check ffmpeg, database, migrations, buckets, storage and disk; print fixes")
    add_dashboard_parser(sub)
    cfg = sub.add_parser("config", help="print every setting (secrets masked)")
    cfg.add_argument("--markdown", action="store_true", help="print the README's variable table instead")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "config" and args.markdown:
        print(config.markdown_table())
        return 0
    try:
        settings = load_settings(env_file=ENV_FILE)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    print(context_line(settings), file=sys.stderr)
    name = args.command or "run"
    try:
        return COMMANDS[name](settings, args)
    except argparse.ArgumentTypeError as exc:  # an argument the command itself found wrong
        parser.error(f"{name}: {exc}")
    except NoDatabaseHere as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOTHING_HERE
    except (MediaWorkerError, StorageError, MediaError, ImportError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_STARTUP_FAILED


def context_line(settings: Settings) -> str:
    """Where this command works: data directory, .env, database and storage, in one line."""
    data = settings.worker_data_dir.resolve()
    env = Path(ENV_FILE).resolve()
    database = mask(settings.database_url) if settings.database_url else f"embedded under {data / 'postgres'}"
    if storage_refusal(settings) is not None:
        storage = "none configured (SUPABASE_URL unset)"
    elif settings.local_storage:
        storage = f"local folders under {local_storage_root(settings).resolve()}"
    else:
        storage = f"Supabase Storage at {settings.supabase_url}"
    return (f"media-worker: data {data}; .env {env if env.is_file() else f'none (no {env})'}; "
            f"database {database}; storage {storage}")


def connect_database(settings: Settings, create: bool = True) -> str:
    """The database URL, migrated: automatically for the embedded database, checked otherwise.
    With create=False (commands that only read), a missing embedded database raises NoDatabaseHere."""
    if not create:
        refuse_missing_embedded_database(settings)
    url = database_url(settings)
    if settings.database_url:
        check_migrations_current(url)
    else:
        for migration in apply_migrations(url):
            log.info("migration_applied", migration=migration)
    return url


def refuse_missing_embedded_database(settings: Settings) -> None:
    """For commands that only read: raise NoDatabaseHere rather than create an embedded database."""
    if settings.embedded_database and not embedded_database_exists(settings.worker_data_dir):
        raise NoDatabaseHere(
            f"no embedded database at {(settings.worker_data_dir / 'postgres').resolve()}: nothing has run from "
            f"{Path.cwd()} yet. Run the command from the directory the worker runs in (paths are relative to "
            "it), or set WORKER_DATA_DIR or DATABASE_URL.")


def refuse_half_configured_storage(settings: Settings) -> None:
    refusal = storage_refusal(settings)
    if refusal is not None:
        raise refusal


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    refuse_half_configured_storage(settings)
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
    # A machine without a GPU fails every hardware check on every start: why is detail, not news.
    log.info("hwaccel_chosen", mode=mode, path=choice.accel.name, encoder=choice.accel.encoder,
             decoder=choice.accel.hwaccel or "cpu", tried=[check.split(":", 1)[0] for check in choice.reasons])
    log.debug("hwaccel_checks", checks=list(choice.reasons))
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
        refuse_missing_embedded_database(settings)
        url = database_url(settings)
    except MediaWorkerError as exc:
        findings.append(doctor.Finding("database", False, str(exc), "check DATABASE_URL"))
        url = ""
    rules: dict[str, tuple[int | None, list[str] | None]] = {}
    if url:
        findings += doctor.check_database(settings, url)
        if all(f.ok for f in findings if f.name in ("database", "migrations")):
            rules = load_bucket_rules(settings, url)
    findings += doctor.check_handlers(settings, rules.get(OUTPUT_BUCKET))
    try:
        findings.append(doctor.check_storage(settings, open_storage(settings, rules)))
    except ConfigError as exc:
        findings.append(doctor.Finding("storage", False, "; ".join(exc.problems)))
    findings.append(doctor.check_temp_dir(settings))
    failures = doctor.print_findings(findings)
    print(f"\n{failures} problem(s) found" if failures else "\nall checks passed")
    return 1 if failures else 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    url = database_url(settings)
    applied = apply_migrations(url)
    print(f"applied {len(applied)} migration(s)" + "".join(f"\n  {name}" for name in applied))
    return 0


def open_store(settings: Settings, create: bool = True) -> WorkerStore:
    return WorkerStore(connect_database(settings, create), new_worker_id(), settings.worker_lease_seconds)


def cmd_enqueue(settings: Settings, args: argparse.Namespace) -> int:
    refuse_half_configured_storage(settings)
    payload = cli_jobs.checked_payload(settings, args)  # before any database, upload or insert
    return cli_jobs.cmd_enqueue(settings, args, open_store(settings), payload)


def job_command(run: Callable[[Settings, argparse.Namespace, WorkerStore], int],
                create: bool = False) -> Callable[[Settings, argparse.Namespace], int]:
    """A cli_jobs command with its store; `create`: whether it may start an embedded database."""
    def command(settings: Settings, args: argparse.Namespace) -> int:
        return run(settings, args, open_store(settings, create))
    return command


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    store = open_store(settings, create=False)
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


def cmd_workers(settings: Settings, args: argparse.Namespace) -> int:
    return print_workers(open_store(settings, create=False), settings)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for name, value in settings.describe().items():
        print(f"{name}={value}")
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": cmd_run, "migrate": cmd_migrate, "status": cmd_status, "doctor": cmd_doctor, "config": cmd_config,
    "workers": cmd_workers, "dashboard": cmd_dashboard,
    # Only `run`, `migrate` and `enqueue` may start (and so create) an embedded database.
    "enqueue": cmd_enqueue, "jobs": job_command(cli_jobs.cmd_jobs, create=False),
    "retry": job_command(cli_jobs.cmd_retry, create=False), "cancel": job_command(cli_jobs.cmd_cancel, create=False),
    "cleanup": lambda settings, args: cmd_cleanup(settings, args, connect_database(settings)),
}
