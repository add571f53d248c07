"""Every environment variable the worker reads, defined once, on pydantic-settings.

Each field of `Settings` is one variable (its name in capitals), with its type, default, unit
and meaning; secrets are masked in every repr. The README's variable table is printed from
here (`python worker.py config --markdown`). Reading and checking them is worker/config.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

HwAccel = Literal["auto", "none", "nvenc", "vaapi", "qsv"]
LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
StorageBackend = Literal["supabase", "local"]
# A comma-separated list: pydantic-settings would otherwise read a tuple as JSON.
CommaList = Annotated[tuple[str, ...], NoDecode]

# The variables load_settings() reads, for the environment source (os.environ unless given).
ENVIRON_GIVEN: ContextVar[Mapping[str, str] | None] = ContextVar("media_worker_environ", default=None)


def setting(default: Any, meaning: str, *, secret: bool = False, ge: float | None = None,
            le: float | None = None) -> Any:
    """Declare one environment variable: its default, meaning, bounds and whether it is a secret."""
    return Field(default, description=meaning, ge=ge, le=le, allow_inf_nan=False if ge is not None else None,
                 json_schema_extra={"secret": secret})


class _Environment(EnvSettingsSource):
    """The process environment, or the mapping load_settings() was given (tests, tools)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = ENVIRON_GIVEN.get()
        if given is None:
            return super()._load_env_vars()
        # As pydantic-settings reads os.environ here: names case-insensitive, empty values unset.
        return {name.lower(): value for name, value in given.items() if value.strip()}


class Settings(BaseSettings):
    """The worker's whole configuration, read once at start-up."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True, str_strip_whitespace=True,
                                      case_sensitive=False)

    database_url: str | None = setting(
        None,
        "Postgres URL (direct or session pooler). Unset, with SUPABASE_URL unset too: embedded PostgreSQL "
        "under WORKER_DATA_DIR.",
        secret=True)
    supabase_url: str | None = setting(
        None,
        "https://<ref>.supabase.co or https://<ref>.storage.supabase.co. Required with DATABASE_URL "
        "unless STORAGE_BACKEND=local.")
    supabase_service_role_key: str | None = setting(
        None, "Service-role key for Storage (required with SUPABASE_URL).",
        secret=True)
    storage_backend: StorageBackend | None = setting(
        None,
        "supabase or local (files under WORKER_DATA_DIR/storage). Unset: supabase when SUPABASE_URL is set, "
        "local when nothing is configured (the demo).")
    worker_data_dir: Path = setting(
        Path(".data"), "Where the embedded database and local storage live.")
    worker_concurrency: int = setting(
        1, "Jobs run at once in one worker process.", ge=1, le=64)
    worker_job_types: CommaList = setting(
        (),
        "Comma-separated job types this worker takes. Empty: every type; one with no handler here fails, "
        "so list the types when workers with different handlers share a queue.")
    worker_max_running_per_user: int | None = setting(
        None,
        "Most jobs of one owner (user_id; jobs without one count as one owner) running at once across "
        "the fleet, enforced by the claim. Unset: no cap; owners still take turns.", ge=1)
    worker_handler_modules: CommaList = setting(
        (), "Comma-separated Python modules that register extra handlers.")
    worker_poll_interval_seconds: float = setting(
        2.0, "Fallback poll period when no NOTIFY arrives.",
        ge=0.05, le=3600)
    worker_lease_seconds: float = setting(
        60.0, "How long a claim holds a job without a heartbeat.",
        ge=1, le=86400)
    worker_heartbeat_seconds: float = setting(
        10.0, "Lease renewal and cancel check period; keep it under a third of the lease.",
        ge=0.1, le=3600)
    worker_shutdown_timeout_seconds: float = setting(
        30.0, "After SIGTERM, how long running jobs may finish before release.",
        ge=0, le=86400)
    worker_retry_base_seconds: float = setting(
        10.0, "First retry delay after a transient failure; doubles per attempt.",
        ge=0, le=86400)
    worker_retry_max_seconds: float = setting(
        900.0, "Cap on the retry delay.", ge=0, le=604800)
    worker_temp_dir: Path = setting(
        Path(tempfile.gettempdir()) / "media-worker", "Parent of the per-job work directories.")
    upload_timeout_seconds: float = setting(
        600.0,
        "Deadline for one transfer: this plus 1 s per MiB; request timeouts derive from it.",
        ge=1, le=86400)
    upload_max_retries: int = setting(
        3, "Retries per request/chunk; backoff 1 s, 2 s, 4 s... with jitter.",
        ge=0, le=20)
    upload_chunk_size_mb: float = setting(
        6.0, "Resumable upload chunk size in MiB (hosted Supabase requires 6).",
        ge=1, le=512)
    upload_resumable_threshold_mb: float = setting(
        6.0, "Files above this many MiB use the resumable (TUS) upload.",
        ge=0, le=1_000_000)
    upload_pipelining: bool = setting(
        True, "Send a resumable upload's next chunk before the server answered the last (false: one per round trip).")
    upload_concurrency: int = setting(
        4, "Uploads of one job's outputs that run at once (1: one file after another).",
        ge=1, le=32)
    input_max_size_mb: float = setting(
        2048.0, "Largest input object the worker downloads, in MiB.",
        ge=1, le=1_000_000)
    output_signed_url_seconds: int = setting(
        0, "If > 0, the result carries signed URLs valid this long.",
        ge=0, le=31_536_000)
    ffmpeg_path: str = setting(
        "ffmpeg", "ffmpeg binary.")
    ffprobe_path: str = setting(
        "ffprobe", "ffprobe binary.")
    ffmpeg_hwaccel: HwAccel = setting(
        "auto", "auto, none, nvenc, vaapi or qsv. auto proves each path with a one-frame test.")
    ffmpeg_timeout_seconds: float = setting(
        0.0, "Wall-clock limit per ffmpeg run; 0: 10x the input duration, at least 5 min.",
        ge=0, le=604800)
    ffmpeg_stall_seconds: float = setting(
        120.0, "Kill ffmpeg when its progress stops for this long.",
        ge=1, le=86400)
    media_max_pixels: int = setting(
        35_389_440, "Largest width x height accepted (default: 8K UHD).", ge=1)
    media_max_duration_seconds: float = setting(
        14_400.0, "Longest input accepted.", ge=0.1)
    media_max_streams: int = setting(
        16, "Most streams an input may carry.", ge=1, le=1000)
    video_max_height: int = setting(
        1080, "Web MP4 height cap; smaller inputs are never upscaled.",
        ge=16, le=8640)
    video_crf: int = setting(
        23, "x264 quality, 1-51 (lower is better and larger; 0, lossless, is not in H.264 High).", ge=1, le=51)
    video_preset: Preset = setting(
        "veryfast", "x264 speed preset.")
    log_level: LogLevel = setting(
        "info", "debug, info, warning or error.")
    log_format: LogFormat = setting(
        "auto", "json, console, or auto (console on a TTY, JSON otherwise).")
    health_port: int = setting(
        0, "If set, serve /healthz, /readyz and /metrics on this port.", ge=0, le=65535)
    webhook_url: str | None = setting(
        None, "POST a signed event here when a job ends.")
    webhook_secret: str | None = setting(
        None, "Standard Webhooks signing secret (whsec_... or raw).", secret=True)
    job_retention_days: float = setting(
        30.0, "Completed and cancelled jobs older than this are deleted.", ge=0)
    job_failed_retention_days: float = setting(
        90.0, "Failed jobs older than this are deleted.", ge=0)
    upload_retention_hours: float | None = Field(
        None, gt=0, allow_inf_nan=False, json_schema_extra={"secret": False},
        description="Delete media-uploads objects older than this unless a pending or processing job names them. "
                    "Unset: keep every upload.")
    output_retention_follows_jobs: bool = setting(
        False, "Delete a job's outputs (media-outputs/{owner}/{job_id}/) before the job row when the row expires.")
    dashboard_host: str = setting(
        "127.0.0.1", "Address `python worker.py dashboard` binds; any but loopback needs DASHBOARD_TOKEN.")
    dashboard_port: int = setting(
        8090, "Port of the operator dashboard (`python worker.py dashboard`).", ge=1, le=65535)
    dashboard_token: str | None = setting(
        None, "Dashboard access token (HTTP Basic password or Bearer token); required off loopback.",
        secret=True)

    @field_validator("worker_job_types", "worker_handler_modules", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        return tuple(item.strip() for item in value.split(",") if item.strip()) if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls), dotenv_settings

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v}' for k, v in self.describe().items())})"

    __str__ = __repr__

    def describe(self) -> dict[str, str]:
        """Every variable and its effective value, secrets masked."""
        return {name.upper(): mask(getattr(self, name)) if is_secret(name) else format_value(getattr(self, name))
                for name in type(self).model_fields}

    @property
    def upload_chunk_size_bytes(self) -> int:
        return int(self.upload_chunk_size_mb * 1024 * 1024)

    @property
    def upload_resumable_threshold_bytes(self) -> int:
        return int(self.upload_resumable_threshold_mb * 1024 * 1024)

    @property
    def input_max_size_bytes(self) -> int:
        return int(self.input_max_size_mb * 1024 * 1024)

    @property
    def local_storage(self) -> bool:
        """Outputs go to WORKER_DATA_DIR/storage rather than Supabase Storage."""
        return self.storage_backend == "local" or (self.storage_backend is None and not self.supabase_url)

    def secret_values(self) -> list[str]:
        """What must never be written anywhere: the keys, the database password in its raw and
        URL-encoded forms, the webhook secret with and without its whsec_ prefix."""
        values = [self.supabase_service_role_key or "", self.webhook_secret or ""]
        if self.webhook_secret and self.webhook_secret.startswith("whsec_"):
            values.append(self.webhook_secret.removeprefix("whsec_"))
        if self.database_url:
            password = urlsplit(self.database_url).password or ""
            values += [password, unquote(password)]
        return [v for v in values if v]

    @property
    def embedded_database(self) -> bool:
        """No DATABASE_URL: the worker starts its own PostgreSQL under WORKER_DATA_DIR."""
        return not self.database_url


def is_secret(name: str) -> bool:
    extra = Settings.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


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


def markdown_table() -> str:
    """The README's table of variables."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = "$TMPDIR/media-worker" if name == "worker_temp_dir" else format_value(info.default)
        rows.append(f"| `{name.upper()}` | {f'`{default}`' if default else '(unset)'} | {info.description} |")
    return "\n".join(rows)
