"""Pure pieces of talking to Supabase Storage: URLs, TUS arithmetic, error classification.

Nothing here does I/O; `utils.supabase.http` and `utils.supabase.upload` call these around its HTTP requests.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from utils.backoff import backoff_delay, retry_after_seconds
from utils.storage import human_bytes

TUS_VERSION = "1.0.0"
HOSTED_SUFFIX = ".supabase.co"
DIRECT_STORAGE_SUFFIX = ".storage.supabase.co"
STORAGE_PREFIX = "/storage/v1"
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0

# Statuses worth another try: lock/offset conflicts, rate limits, server and gateway trouble.
RETRYABLE_STATUSES = frozenset({408, 409, 423, 425, 429})
# A TUS upload URL the server no longer knows (expired after ~24 h, or forgotten).
UPLOAD_GONE_STATUSES = frozenset({404, 410})
# After a PATCH broke off, the server answers a HEAD only once the dead request's lock drains (3.02 s
# measured): a HEAD waits at least twice that before it counts as timed out.
LOCK_DRAIN_SECONDS = 3.0


@dataclass(frozen=True)
class StorageUrls:
    """Where to send REST requests and where to create resumable uploads."""

    rest: str
    resumable: str


def storage_urls(supabase_url: str) -> StorageUrls:
    """Derive the endpoints from SUPABASE_URL (project URL, direct storage host, or local/custom)."""
    parts = urlsplit(supabase_url.strip())
    host = parts.hostname or ""
    if host.endswith(HOSTED_SUFFIX):
        ref = host.removesuffix(DIRECT_STORAGE_SUFFIX).removesuffix(HOSTED_SUFFIX)
        # The direct storage host does no request buffering, which large uploads need.
        direct = f"https://{ref}{DIRECT_STORAGE_SUFFIX}{STORAGE_PREFIX}"
        rest = direct if host.endswith(DIRECT_STORAGE_SUFFIX) else f"https://{ref}{HOSTED_SUFFIX}{STORAGE_PREFIX}"
        return StorageUrls(rest=rest, resumable=f"{direct}/upload/resumable")
    path = parts.path.rstrip("/")
    if not path.endswith(STORAGE_PREFIX):
        path += STORAGE_PREFIX
    rest = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return StorageUrls(rest=rest, resumable=f"{rest}/upload/resumable")


def object_url(rest: str, route: str, bucket: str, path: str = "") -> str:
    """`{rest}/{route}/{bucket}/{path}` with each part percent-encoded."""
    tail = f"/{quote(path, safe='/')}" if path else ""
    return f"{rest}/{route}/{quote(bucket, safe='')}{tail}"


def upload_metadata(bucket: str, path: str, content_type: str, cache_control: str = "3600") -> str:
    """The TUS Upload-Metadata header: comma-separated `key base64(value)` pairs."""
    pairs = {"bucketName": bucket, "objectName": path, "contentType": content_type, "cacheControl": cache_control}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def chunk_length(offset: int, size: int, chunk_size: int) -> int:
    """Bytes to send in the next PATCH from the server's offset: a full chunk, or what is left."""
    if not 0 <= offset <= size:
        raise ValueError(f"server offset {offset} is outside the file (0..{size})")
    return min(chunk_size, size - offset)


def parse_offset(header: str | None, size: int) -> int:
    """The Upload-Offset header as an int within 0..size; raise ValueError otherwise."""
    if header is None or not header.strip().isdigit():
        raise ValueError(f"missing or invalid Upload-Offset {header!r}")
    offset = int(header)
    if offset > size:
        raise ValueError(f"Upload-Offset {offset} is past the file's {size} bytes")
    return offset


def request_timeouts(upload_timeout_seconds: float) -> tuple[float, float]:
    """(connect, read) timeouts for one request, derived from UPLOAD_TIMEOUT_SECONDS."""
    connect = min(10.0, max(1.0, upload_timeout_seconds / 20))
    read = min(60.0, max(1.0, upload_timeout_seconds / 10))
    return connect, read


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Backoff before retry `attempt` (1 s, 2 s, 4 s... jittered), never shorter than Retry-After."""
    return max(backoff_delay(attempt, RETRY_BASE_SECONDS, RETRY_CAP_SECONDS), retry_after_seconds(retry_after) or 0.0)


@dataclass(frozen=True)
class Failure:
    """An error answer, with the status that counts (the body's statusCode when there is one)."""

    status: int
    code: str
    message: str

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status in RETRYABLE_STATUSES


def read_failure(http_status: int, body: str) -> Failure:
    """Classify by the JSON body's statusCode/code: the REST routes answer HTTP 400 for most errors."""
    try:
        data = json.loads(body) if body.lstrip().startswith("{") else {}
    except ValueError:
        data = {}
    status = http_status
    if isinstance(data, dict) and str(data.get("statusCode", "")).isdigit():
        status = int(data["statusCode"])
    code = str(data.get("code") or data.get("error") or "") if isinstance(data, dict) else ""
    message = str(data.get("message") or "") if isinstance(data, dict) and data else page_title(body)[:300]
    return Failure(status=status, code=code, message=message)


def page_title(body: str) -> str:
    """An HTML error page (a gateway's 502) by its <title>; any other body as it is, stripped."""
    start, end = body.find("<title>"), body.find("</title>")
    return body[start + len("<title>"):end].strip() if 0 <= start < end else body.strip()


def explain(failure: Failure, action: str, bucket: str, size: int | None = None) -> str:
    """A message that says what failed and what to change."""
    said = f"({failure.status}{' ' + failure.code if failure.code else ''}: {failure.message or 'no message'})"
    if failure.status == 413:
        what = f"file is {human_bytes(size)} and " if size is not None else ""
        return (f"{action} refused {said}: {what}bucket {bucket} does not accept it: raise "
                "storage.buckets.file_size_limit and the project's global upload limit")
    if failure.status == 415:
        return f"{action} refused {said}: add the content type to storage.buckets.allowed_mime_types of {bucket}"
    if failure.status in (401, 403):
        return (f"{action} refused {said}: check SUPABASE_SERVICE_ROLE_KEY (it must be the project's "
                "service-role key, not the anon key) and the storage policies")
    if failure.code == "NoSuchBucket":
        return f"{action} refused {said}: bucket {bucket} does not exist; apply the migrations"
    return f"{action} failed {said}"


# The overall deadline grows with the file: a transfer may average as slow as this and still
# finish, so UPLOAD_TIMEOUT_SECONDS bounds stalls and small files, never a large file's size.
MIN_AVERAGE_BYTES_PER_SECOND = 1024 * 1024


def transfer_seconds(base_seconds: float, size: int) -> float:
    """The overall deadline for moving `size` bytes: the base plus 1 s per MiB."""
    return base_seconds + size / MIN_AVERAGE_BYTES_PER_SECOND


class Deadline:
    """An overall deadline for one transfer, and per-request read timeouts that respect it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def timeout(self, connect: float, read: float) -> tuple[float, float]:
        """(connect, read) for the next request, shortened to the time left (at least 0.1 s)."""
        left = max(0.1, self.remaining())
        return min(connect, left), min(read, left)


class ProgressLog:
    """Decides when to log transfer progress: at most every `interval` seconds, and at the end."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.started = self.last = time.monotonic()

    def due(self, done: int, total: int) -> dict[str, float] | None:
        """Fields to log now (bytes, percent, MB/s), or None when it is too soon."""
        now = time.monotonic()
        if done < total and now - self.last < self.interval:
            return None
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        return {"bytes": done, "total": total, "percent": round(100 * done / total, 1) if total else 100.0,
                "mb_per_s": round(done / elapsed / 1e6, 1)}
