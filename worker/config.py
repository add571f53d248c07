"""Every environment variable the worker reads, defined once.

Each field of `Settings` names its variable, default and meaning in its metadata.
`load_settings()` reads the process environment plus an optional `.env` file,
validates every variable and raises one `ConfigError` listing all bad ones.
The README's variable table is printed from this module (`python worker.py config --markdown`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from utils.webhooks import secret_key
from worker.errors import ConfigError

HWACCEL_CHOICES = ("auto", "none", "nvenc", "vaapi", "qsv")
LOG_FORMAT_CHOICES = ("auto", "json", "console")
LOG_LEVEL_CHOICES = ("debug", "info", "warning", "error")
PRESET_CHOICES = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)


def setting(env: str, default: Any, meaning: str, *, secret: bool = False,
            choices: tuple[str, ...] = (), minimum: float | None = None,
            maximum: float | None = None) -> Any:
    """Declare one environment variable as a dataclass field."""
    meta = {"env": env, "meaning": meaning, "secret": secret, "choices": choices,
            "minimum": minimum, "maximum": maximum}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """The worker's whole configuration, read once at start-up."""

    database_url: str | None = setting(
        "DATABASE_URL", None,
        "Postgres URL (direct or session pooler). Unset: embedded PostgreSQL under WORKER_DATA_DIR.",
        secret=True)
    supabase_url: str | None = setting(
        "SUPABASE_URL", None,
        "https://<ref>.supabase.co or https://<ref>.storage.supabase.co. Unset: local storage under WORKER_DATA_DIR.")
    supabase_service_role_key: str | None = setting(
        "SUPABASE_SERVICE_ROLE_KEY", None, "Service-role key for Storage (required with SUPABASE_URL).",
        secret=True)
    worker_data_dir: Path = setting(
        "WORKER_DATA_DIR", Path(".data"), "Where the embedded database and local storage live.")
    worker_concurrency: int = setting(
        "WORKER_CONCURRENCY", 1, "Jobs run at once in one worker process.", minimum=1, maximum=64)
    worker_job_types: tuple[str, ...] = setting(
        "WORKER_JOB_TYPES", (),
        "Comma-separated job types this worker takes. Empty: every type; one with no handler here fails, "
        "so list the types when workers with different handlers share a queue.")
    worker_handler_modules: tuple[str, ...] = setting(
        "WORKER_HANDLER_MODULES", (), "Comma-separated Python modules that register extra handlers.")
    worker_poll_interval_seconds: float = setting(
        "WORKER_POLL_INTERVAL_SECONDS", 2.0, "Fallback poll period when no NOTIFY arrives.",
        minimum=0.05, maximum=3600)
    worker_lease_seconds: float = setting(
        "WORKER_LEASE_SECONDS", 60.0, "How long a claim holds a job without a heartbeat.",
        minimum=1, maximum=86400)
    worker_heartbeat_seconds: float = setting(
        "WORKER_HEARTBEAT_SECONDS", 10.0, "Lease renewal and cancel check period; keep it under a third of the lease.",
        minimum=0.1, maximum=3600)
    worker_shutdown_timeout_seconds: float = setting(
        "WORKER_SHUTDOWN_TIMEOUT_SECONDS", 30.0, "After SIGTERM, how long running jobs may finish before release.",
        minimum=0, maximum=86400)
    worker_retry_base_seconds: float = setting(
        "WORKER_RETRY_BASE_SECONDS", 10.0, "First retry delay after a transient failure; doubles per attempt.",
        minimum=0, maximum=86400)
    worker_retry_max_seconds: float = setting(
        "WORKER_RETRY_MAX_SECONDS", 900.0, "Cap on the retry delay.", minimum=0, maximum=604800)
    worker_temp_dir: Path = setting(
        "WORKER_TEMP_DIR", Path(tempfile.gettempdir()) / "media-worker", "Parent of the per-job work directories.")
    upload_timeout_seconds: float = setting(
        "UPLOAD_TIMEOUT_SECONDS", 600.0,
        "Deadline for one transfer: this plus 1 s per MiB; request timeouts derive from it.",
        minimum=1, maximum=86400)
    upload_max_retries: int = setting(
        "UPLOAD_MAX_RETRIES", 3, "Retries per request/chunk; backoff 1 s, 2 s, 4 s... with jitter.",
        minimum=0, maximum=20)
    upload_chunk_size_mb: float = setting(
        "UPLOAD_CHUNK_SIZE_MB", 6.0, "Resumable upload chunk size in MiB (hosted Supabase requires 6).",
        minimum=1, maximum=512)
    upload_resumable_threshold_mb: float = setting(
        "UPLOAD_RESUMABLE_THRESHOLD_MB", 6.0, "Files above this many MiB use the resumable (TUS) upload.",
        minimum=0, maximum=1_000_000)
    input_max_size_mb: float = setting(
        "INPUT_MAX_SIZE_MB", 2048.0, "Largest input object the worker downloads, in MiB.",
        minimum=1, maximum=1_000_000)
    output_signed_url_seconds: int = setting(
        "OUTPUT_SIGNED_URL_SECONDS", 0, "If > 0, the result carries signed URLs valid this long.",
        minimum=0, maximum=31_536_000)
    ffmpeg_path: str = setting("FFMPEG_PATH", "ffmpeg", "ffmpeg binary.")
    ffprobe_path: str = setting("FFPROBE_PATH", "ffprobe", "ffprobe binary.")
    ffmpeg_hwaccel: str = setting(
        "FFMPEG_HWACCEL", "auto", "auto, none, nvenc, vaapi or qsv. auto proves each path with a one-frame test.",
        choices=HWACCEL_CHOICES)
    ffmpeg_timeout_seconds: float = setting(
        "FFMPEG_TIMEOUT_SECONDS", 0.0, "Wall-clock limit per ffmpeg run; 0: 10x the input duration, at least 5 min.",
        minimum=0, maximum=604800)
    ffmpeg_stall_seconds: float = setting(
        "FFMPEG_STALL_SECONDS", 120.0, "Kill ffmpeg when its progress stops for this long.",
        minimum=1, maximum=86400)
    media_max_pixels: int = setting(
        "MEDIA_MAX_PIXELS", 35_389_440, "Largest width x height accepted (default: 8K UHD).", minimum=1)
    media_max_duration_seconds: float = setting(
        "MEDIA_MAX_DURATION_SECONDS", 14_400.0, "Longest input accepted.", minimum=0.1)
    media_max_streams: int = setting(
        "MEDIA_MAX_STREAMS", 16, "Most streams an input may carry.", minimum=1, maximum=1000)
    video_max_height: int = setting(
        "VIDEO_MAX_HEIGHT", 1080, "Web MP4 height cap; smaller inputs are never upscaled.",
        minimum=16, maximum=8640)
    video_crf: int = setting("VIDEO_CRF", 23, "x264 quality (lower is better and larger).", minimum=0, maximum=51)
    video_preset: str = setting("VIDEO_PRESET", "veryfast", "x264 speed preset.", choices=PRESET_CHOICES)
    log_level: str = setting("LOG_LEVEL", "info", "debug, info, warning or error.", choices=LOG_LEVEL_CHOICES)
    log_format: str = setting(
        "LOG_FORMAT", "auto", "json, console, or auto (console on a TTY, JSON otherwise).",
        choices=LOG_FORMAT_CHOICES)
    health_port: int = setting(
        "HEALTH_PORT", 0, "If set, serve /healthz, /readyz and /metrics on this port.", minimum=0, maximum=65535)
    webhook_url: str | None = setting("WEBHOOK_URL", None, "POST a signed event here when a job ends.")
    webhook_secret: str | None = setting(
        "WEBHOOK_SECRET", None, "Standard Webhooks signing secret (whsec_... or raw).", secret=True)
    job_retention_days: float = setting(
        "JOB_RETENTION_DAYS", 30.0, "Completed and cancelled jobs older than this are deleted.", minimum=0)
    job_failed_retention_days: float = setting(
        "JOB_FAILED_RETENTION_DAYS", 90.0, "Failed jobs older than this are deleted.", minimum=0)

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v}' for k, v in self.describe().items())})"

    def describe(self) -> dict[str, str]:
        """Every variable and its effective value, secrets masked."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.metadata["env"]] = mask(value) if f.metadata["secret"] else format_value(value)
        return out

    @property
    def upload_chunk_size_bytes(self) -> int:
        return int(self.upload_chunk_size_mb * 1024 * 1024)

    @property
    def upload_resumable_threshold_bytes(self) -> int:
        return int(self.upload_resumable_threshold_mb * 1024 * 1024)

    @property
    def input_max_size_bytes(self) -> int:
        return int(self.input_max_size_mb * 1024 * 1024)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def mask(value: Any) -> str:
    """Hide a secret; for URLs keep everything but the password."""
    if not value:
        return ""
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return text
    return "***"


def _parse(raw: str, kind: Any, meta: dict[str, Any]) -> Any:
    """Turn one raw string into the field's type; raise ValueError with a reason."""
    text = raw.strip()
    if kind in ("int",):
        value: Any = int(text)
    elif kind in ("float",):
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
    elif kind == "Path":
        value = Path(text)
    elif kind.startswith("tuple"):
        value = tuple(item.strip() for item in text.split(",") if item.strip())
    else:
        value = text or None
    if meta["choices"] and value not in meta["choices"]:
        raise ValueError(f"must be one of {', '.join(meta['choices'])}")
    if isinstance(value, (int, float)):
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ValueError(f"must be at least {meta['minimum']:g}")
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise ValueError(f"must be at most {meta['maximum']:g}")
    return value


def _base_kind(annotation: str) -> str:
    return annotation.replace(" | None", "").strip()


def load_settings(environ: dict[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """Read and validate every variable; raise ConfigError naming all bad ones."""
    source: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        source.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    source.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(Settings):
        name = f.metadata["env"]
        raw = source.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[f.name] = _parse(raw, _base_kind(str(f.type)), dict(f.metadata))
        except ValueError as exc:
            shown = mask(raw) if f.metadata["secret"] else raw
            reason = str(exc) if "invalid literal" not in str(exc) and "could not convert" not in str(exc) \
                else f"must be a {_base_kind(str(f.type))}"
            problems.append(f"{name}={shown!r}: {reason}")
    settings = Settings(**values)
    problems.extend(_cross_checks(settings))
    if problems:
        raise ConfigError(problems)
    return settings


def _cross_checks(s: Settings) -> list[str]:
    problems = []
    if s.supabase_url and not s.supabase_service_role_key:
        problems.append("SUPABASE_SERVICE_ROLE_KEY: required when SUPABASE_URL is set")
    if s.supabase_url and urlsplit(s.supabase_url).scheme not in ("http", "https"):
        problems.append(f"SUPABASE_URL={s.supabase_url!r}: must start with https:// (or http:// for local)")
    if s.database_url and urlsplit(s.database_url).scheme not in ("postgres", "postgresql"):
        problems.append(f"DATABASE_URL={mask(s.database_url)!r}: must be a postgresql:// URL")
    if s.worker_heartbeat_seconds >= s.worker_lease_seconds:
        problems.append(
            f"WORKER_HEARTBEAT_SECONDS={s.worker_heartbeat_seconds:g}: must be shorter than "
            f"WORKER_LEASE_SECONDS={s.worker_lease_seconds:g} (a third of it is a good value)")
    if "%" in str(s.worker_temp_dir):
        problems.append(f"WORKER_TEMP_DIR={str(s.worker_temp_dir)!r}: must not contain '%': ffmpeg would read it "
                        "as part of its numbered output names (thumb_%03d.jpg); choose a directory without it")
    if s.webhook_url and urlsplit(s.webhook_url).scheme not in ("http", "https"):
        problems.append(f"WEBHOOK_URL={s.webhook_url!r}: must be an http(s) URL")
    if s.webhook_url and not s.webhook_secret:
        problems.append("WEBHOOK_SECRET: required when WEBHOOK_URL is set (receivers verify the signature)")
    if s.webhook_secret:
        try:
            secret_key(s.webhook_secret)
        except ValueError:
            problems.append("WEBHOOK_SECRET=***: a whsec_ secret must be base64 after the prefix")
    return problems


def markdown_table() -> str:
    """The README's table of variables."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in fields(Settings):
        default = format_value(f.default)
        if f.metadata["env"] == "WORKER_TEMP_DIR":
            default = "$TMPDIR/media-worker"
        rows.append(f"| `{f.metadata['env']}` | {f'`{default}`' if default else '(unset)'} | {f.metadata['meaning']} |")
    return "\n".join(rows)
