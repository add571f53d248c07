"""`python worker.py cleanup [--dry-run]`: one housekeeping pass now; and the storage lines of `status`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from utils.storage import human_bytes
from worker.cli_workers import format_age
from worker.config import Settings
from worker.db import JobStore
from worker.db.retention import RetentionStore
from worker.retention import PassReport, RetentionPolicy, run_pass, storage_usage
from worker.runtime import open_storage

EXIT_NOT_DONE = 1  # a Storage error, or another worker was running housekeeping


def add_cleanup_parser(sub: Any) -> None:
    cleanup = sub.add_parser(
        "cleanup", help="run one housekeeping pass now: expired jobs, abandoned uploads, expired jobs' outputs")
    cleanup.add_argument("--dry-run", action="store_true",
                         help="list what would be deleted (bucket, path, size, age, reason) and delete nothing")


def cmd_cleanup(settings: Settings, args: argparse.Namespace, db_url: str) -> int:
    """Run the pass the daemon runs every HOUSEKEEPING_INTERVAL_SECONDS (or, --dry-run, list it)."""
    policy = RetentionPolicy.from_settings(settings)
    storage = open_storage(settings, {})  # no rules: a pass only lists and deletes
    with RetentionStore(db_url) as store:
        report = run_pass(store, storage, policy, dry_run=args.dry_run)
        if report.locked_out:
            print("another worker is running housekeeping right now; nothing was done", file=sys.stderr)
            return EXIT_NOT_DONE
        old_jobs = None if policy.follows_jobs else old_job_rows(settings, store, db_url, args.dry_run)
    print_report(report, policy, old_jobs)
    return EXIT_NOT_DONE if report.errors else 0


def old_job_rows(settings: Settings, store: RetentionStore, db_url: str, dry_run: bool) -> int | None:
    """With outputs kept, today's row retention: how many rows it would delete, or deletes (None: locked out)."""
    retention, failed = settings.job_retention_days * 86400, settings.job_failed_retention_days * 86400
    if dry_run:
        return store.count_old_jobs(retention, failed)
    jobs = JobStore(db_url, "cleanup", settings.worker_lease_seconds)
    try:
        return jobs.delete_old_jobs(settings.job_retention_days, settings.job_failed_retention_days)
    finally:
        jobs.close()


def print_report(report: PassReport, policy: RetentionPolicy, old_jobs: int | None) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    if report.deletions:
        print(f"{'bucket':<14} {'path':<64} {'size':>10} {'age':>7}  reason")
        for d in report.deletions:
            print(f"{d.bucket:<14} {d.path:<64} {human_bytes(d.size):>10} {format_age(d.age_seconds):>7}  {d.reason}")
    total = sum(d.size for d in report.deletions)
    print(f"{verb} {len(report.deletions)} object(s), {human_bytes(total)}")
    if policy.upload_retention_seconds is None:
        print("uploads: kept (UPLOAD_RETENTION_HOURS is unset)")
    if policy.follows_jobs:
        print(f"{verb} {report.jobs_deleted} expired job row(s) whose outputs are gone")
    else:
        rows = "none (another worker holds the lock)" if old_jobs is None else str(old_jobs)
        print(f"{verb} expired job rows: {rows}; their outputs are kept (OUTPUT_RETENTION_FOLLOWS_JOBS is off)")
    for error in report.errors:
        print(f"error: {error}; the rest is kept for the next pass", file=sys.stderr)


def print_storage_usage(settings: Settings, db_url: str) -> None:
    """`status`: objects and bytes held in each bucket."""
    print("\nstorage:")
    for usage in storage_usage(settings, db_url):
        print(f"  {usage.bucket:<16} {usage.objects:>8} objects  {human_bytes(usage.bytes):>10}")
