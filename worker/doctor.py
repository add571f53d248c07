"""`python worker.py doctor`, and the readiness checks /readyz runs.

Each check returns a Finding; a failed one carries the fix a person should apply.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from handlers import load_handlers
from utils.ffmpeg import MediaError, ffmpeg_version
from utils.hwaccel import choose_accel
from utils.redaction import redact
from utils.storage import Storage, StorageError, human_bytes
from worker.config import Settings
from worker.db import JobStore, check_migrations_current, is_transaction_pooler, ping
from worker.errors import DatabaseUnavailable, MigrationsNotCurrent
from worker.runtime import INPUT_BUCKET, OUTPUT_BUCKET

EXPECTED_BUCKET_LIMIT = 2 * 1024**3
MIN_FREE_DISK_BYTES = 5 * 1024**3
READYZ_PROBE_OBJECT = ".media-worker-readyz"
# Orchestrators give a readiness probe a few seconds (Kubernetes: 1 s by default); one prompt
# answer beats a transfer's retries, which would hold the probe for most of a minute.
STORAGE_PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # shown, but does not fail the doctor


def readiness_checks(url: str, storage_factory: Callable[[], Storage],
                     settings: Settings) -> dict[str, Callable[[], None]]:
    """The checks behind /readyz: each raises with a readable message when unusable."""
    storage = storage_factory()

    def ffmpeg_runs() -> None:
        ffmpeg_version(settings.ffmpeg_path)
        ffmpeg_version(settings.ffprobe_path)

    return {"database": lambda: ping(url), "storage": lambda: storage_reachable(storage), "ffmpeg": ffmpeg_runs}


def storage_reachable(storage: Storage) -> None:
    """Ask Storage about an object that need not exist: any clean answer proves reach and key."""
    storage.probe(OUTPUT_BUCKET, READYZ_PROBE_OBJECT, STORAGE_PROBE_TIMEOUT_SECONDS)


def check_ffmpeg(settings: Settings) -> list[Finding]:
    findings = []
    for name, binary in (("ffmpeg", settings.ffmpeg_path), ("ffprobe", settings.ffprobe_path)):
        try:
            findings.append(Finding(name, True, ffmpeg_version(binary)))
        except MediaError as exc:
            findings.append(Finding(name, False, str(exc),
                                    f"install ffmpeg (Debian/Ubuntu: apt-get install -y ffmpeg) or set "
                                    f"{name.upper()}_PATH to the binary"))
    return findings


def check_handlers(settings: Settings, output_rules: tuple[int | None, list[str] | None] | None) -> list[Finding]:
    """Import the handler modules as `run` does, and check each job type's declared output content
    types against the outputs bucket's allowed_mime_types (Storage refuses any other, after ffmpeg ran)."""
    try:
        handlers = load_handlers(settings.worker_handler_modules)
    except ImportError as exc:
        return [Finding("handlers", False, str(exc),
                        "make the module importable from the worker's directory: put its folder on PYTHONPATH "
                        "(PYTHONPATH=/path/to/folder python worker.py) or pip install it")]
    findings = [Finding("handlers", True, ", ".join(sorted(handlers)))]
    allowed = set(output_rules[1]) if output_rules and output_rules[1] else None
    for name, handler in sorted(handlers.items()):
        refused = sorted(set(handler.output_types) - allowed) if allowed is not None else []
        if refused:
            findings.append(Finding(
                f"outputs of {name}", False, f"{', '.join(refused)} not in {OUTPUT_BUCKET}'s allowed_mime_types",
                f"add a migration that appends {', '.join(refused)} to storage.buckets.allowed_mime_types "
                f"where id = '{OUTPUT_BUCKET}'"))
    return findings


def check_hwaccel(settings: Settings) -> Finding:
    """Which ffmpeg path jobs would take, proven by one-frame tests as at start-up."""
    choice = choose_accel(settings.ffmpeg_path, settings.ffmpeg_hwaccel)
    detail = f"FFMPEG_HWACCEL={settings.ffmpeg_hwaccel}: jobs use {choice.accel.name} ({'; '.join(choice.reasons)})"
    unmet = settings.ffmpeg_hwaccel not in ("auto", "none") and choice.accel.is_cpu
    return Finding("hwaccel", True, detail,
                   "check the GPU driver and, in containers, NVIDIA_DRIVER_CAPABILITIES=compute,video,utility"
                   if unmet else "", warning=unmet)


def check_database(settings: Settings, url: str) -> list[Finding]:
    try:
        ping(url)
    except DatabaseUnavailable as exc:
        return [Finding("database", False, str(exc),
                        "check DATABASE_URL (host, password, sslmode) and that the server accepts connections")]
    findings = [Finding("database", True, "connected")]
    if is_transaction_pooler(url):
        findings.append(Finding("pooler", True, "transaction pooler: LISTEN and prepared statements off, polling",
                                "use the session pooler (port 5432) or a direct connection for instant wake-ups",
                                warning=True))
    try:
        check_migrations_current(url)
        findings.append(Finding("migrations", True, "current"))
    except MigrationsNotCurrent as exc:
        findings.append(Finding("migrations", False, str(exc), "python worker.py migrate  (or: supabase db push)"))
        return findings
    return findings + check_buckets(url, remote=not settings.local_storage)


def check_buckets(url: str, remote: bool = True) -> list[Finding]:
    """The buckets' rows, and (with Supabase Storage) a reminder of the project's global upload limit."""
    store = JobStore(url, "doctor", 60)
    try:
        rules = store.bucket_rules()
    finally:
        store.close()
    findings = []
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        if bucket not in rules:
            findings.append(Finding(f"bucket {bucket}", False, "missing from storage.buckets",
                                    "apply the migrations: python worker.py migrate (or supabase db push)"))
            continue
        limit = rules[bucket][0]
        ok = limit is not None and limit >= EXPECTED_BUCKET_LIMIT
        shown = human_bytes(limit) if limit else "no limit"
        findings.append(Finding(
            f"bucket {bucket}", ok, f"file_size_limit {shown}",
            "" if ok else f"update storage.buckets set file_size_limit = {EXPECTED_BUCKET_LIMIT} where id = '{bucket}'"))
    if remote:  # local storage has no project-wide limit
        findings.append(Finding(
            "global upload limit", True, "not readable through the API",
            "make sure the project's global upload limit (Dashboard > Storage > Settings) is at least 2 GB; "
            "the free plan caps it at 50 MB", warning=True))
    return findings


def check_storage(settings: Settings, storage: Storage) -> Finding:
    where = settings.supabase_url or f"local folder {settings.worker_data_dir / 'storage'}"
    try:
        storage_reachable(storage)
        return Finding("storage", True, f"reachable: {where}")
    except StorageError as exc:
        return Finding("storage", False, f"{where}: {exc}",
                       "check SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (the service-role key, not the anon key)")


def check_temp_dir(settings: Settings) -> Finding:
    root = settings.worker_temp_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as exc:
        return Finding("temp dir", False, f"{root}: {exc}", "set WORKER_TEMP_DIR to a writable directory")
    free = shutil.disk_usage(root).free
    ok = free >= MIN_FREE_DISK_BYTES
    return Finding("temp dir", ok, f"{root}: {human_bytes(free)} free",
                   "" if ok else f"free space under {root} or point WORKER_TEMP_DIR at a larger disk "
                   f"(a job needs its input plus outputs; keep {human_bytes(MIN_FREE_DISK_BYTES)} free)")


def print_findings(findings: list[Finding], out: Callable[[str], None] = print) -> int:
    """Print one line per finding (and its fix); return the number of failures."""
    failures = 0
    for f in findings:
        mark = "ok  " if f.ok and not f.warning else ("warn" if f.ok else "FAIL")
        out(redact(f"[{mark}] {f.name}: {f.detail}"))
        if f.fix and (not f.ok or f.warning):
            out(redact(f"       fix: {f.fix}"))
        failures += 0 if f.ok else 1
    return failures

