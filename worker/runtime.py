"""Turning Settings into the live parts: the database URL, storage backend and media settings."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from handlers.base import MediaSettings
from utils.ffmpeg import MediaLimits
from utils.ffmpeg_commands import WebVideoOptions
from utils.media_plan import CPU, Accel
from utils.storage import BucketRules, LocalStorage, Storage
from worker import metrics
from worker.config import Settings, storage_refusal
from worker.db.embedded import start_embedded_postgres
from worker.logs import log

INPUT_BUCKET = "media-uploads"
OUTPUT_BUCKET = "media-outputs"


def new_worker_id() -> str:
    """host:pid:short-uuid, as DESIGN.md §3 names the lease holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded PostgreSQL's URL (started on demand)."""
    if settings.database_url:
        return settings.database_url
    url = start_embedded_postgres(settings.worker_data_dir)
    log.info("embedded_postgres_started", data_dir=str((settings.worker_data_dir / "postgres").resolve()))
    return url


def media_settings(settings: Settings, accel: Accel = CPU) -> MediaSettings:
    """The handlers' view of the settings; `accel` is the start-up hardware probe's choice."""
    return MediaSettings(
        ffmpeg_path=settings.ffmpeg_path,
        ffprobe_path=settings.ffprobe_path,
        web_video=WebVideoOptions(settings.video_max_height, settings.video_crf, settings.video_preset),
        limits=MediaLimits(settings.media_max_pixels, settings.media_max_duration_seconds,
                           settings.media_max_streams),
        timeout_seconds=settings.ffmpeg_timeout_seconds,
        stall_seconds=settings.ffmpeg_stall_seconds,
        accel=accel,
    )


def open_storage(settings: Settings, bucket_rules: dict[str, tuple[int | None, list[str] | None]]) -> Storage:
    """Supabase Storage when SUPABASE_URL is set, else local folders enforcing the bucket rows.

    Raises ConfigError for a DATABASE_URL without SUPABASE_URL, unless STORAGE_BACKEND=local."""
    refusal = storage_refusal(settings)
    if refusal is not None:
        raise refusal
    if not settings.local_storage:
        from utils.supabase.storage import open_supabase_storage  # storage3/httpx load only when used

        return open_supabase_storage(settings, on_retry=metrics.UPLOAD_RETRIES.inc)
    rules = {bucket: BucketRules(limit, tuple(mimes) if mimes else None)
             for bucket, (limit, mimes) in bucket_rules.items()}
    return LocalStorage(local_storage_root(settings), rules)


def local_storage_root(settings: Settings) -> Path:
    return settings.worker_data_dir / "storage"
