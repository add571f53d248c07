"""Prometheus metrics for /metrics. Recorded by the runner and daemon; served by worker.health."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

JOBS_CLAIMED = Counter("media_worker_jobs_claimed", "Jobs claimed, by type.", ["type"], registry=REGISTRY)
JOBS_FINISHED = Counter(
    "media_worker_jobs_finished",
    "Jobs ended by this worker, by type and outcome (completed, failed, cancelled, retry, released, lease_lost).",
    ["type", "status"], registry=REGISTRY)
JOB_DURATION = Histogram(
    "media_worker_job_duration_seconds", "Wall time of one job attempt, claim to final write.", ["type", "status"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200), registry=REGISTRY)
QUEUE_DEPTH = Gauge("media_worker_queue_depth", "Due pending jobs, by type (sampled).", ["type"], registry=REGISTRY)
LEASES_LOST = Counter("media_worker_leases_lost", "Jobs abandoned because another worker took them over.",
                      registry=REGISTRY)
UPLOAD_BYTES = Counter("media_worker_upload_bytes", "Bytes of outputs uploaded.", registry=REGISTRY)
UPLOAD_SECONDS = Counter("media_worker_upload_seconds", "Seconds spent uploading outputs.", registry=REGISTRY)
UPLOAD_RETRIES = Counter("media_worker_upload_retries", "Upload requests retried.", registry=REGISTRY)
DOWNLOAD_BYTES = Counter("media_worker_download_bytes", "Bytes of inputs downloaded.", registry=REGISTRY)
FFMPEG_SPEED = Histogram(
    "media_worker_ffmpeg_speed_ratio", "Media seconds processed per wall-clock second (1 = real time).",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128), registry=REGISTRY)
HWACCEL_PATH = Gauge("media_worker_hwaccel_path", "The hardware path chosen at start-up (1 = in use).", ["path"],
                     registry=REGISTRY)
JOBS_TAKEN_BACK = Counter(
    "media_worker_jobs_taken_back",
    "Jobs this worker took back from dead workers, by reason (lease_expired, process_ended).",
    ["reason"], registry=REGISTRY)
WORKERS_LIVE = Gauge("media_worker_workers_live",
                     "Live workers that take each job type (sampled; \"*\": workers that take every type).",
                     ["type"], registry=REGISTRY)
WEBHOOKS = Counter("media_worker_webhooks", "Webhook deliveries, by result.", ["result"], registry=REGISTRY)
STORAGE_DELETED_BYTES = Counter(
    "media_worker_storage_deleted_bytes",
    "Bytes housekeeping deleted from Storage, by bucket and reason (abandoned_upload, expired_job).",
    ["bucket", "reason"], registry=REGISTRY)


def set_queue_depth(depths: dict[str, int]) -> None:
    """Replace the sampled queue depths (types with no due jobs drop to 0)."""
    _replace_samples(QUEUE_DEPTH, depths)


def set_workers_live(counts: dict[str, int]) -> None:
    """Replace the sampled live-worker counts (types no live worker takes drop to 0)."""
    _replace_samples(WORKERS_LIVE, counts)


def _replace_samples(gauge: Gauge, values: dict[str, int]) -> None:
    for labels in list(gauge._metrics):  # noqa: SLF001 - reset labels that are gone
        if labels[0] not in values:
            gauge.labels(*labels).set(0)
    for label, value in values.items():
        gauge.labels(label).set(value)
