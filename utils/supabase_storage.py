"""Supabase Storage backend: streamed, resumable, retried transfers that never hold a file in memory.

Small files go through storage3 (supabase-py's storage client); larger ones through a TUS
upload in chunks read from disk, resumed from the server's offset after any failure.
Every HTTP error and exception is turned into `StorageError` here, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import requests
import structlog
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from utils.storage import (
    BucketRules,
    ProgressCallback,
    StorageError,
    StoredObject,
    UploadJournal,
    input_too_large,
)
from utils.storage_transfer import (
    BackgroundSha256,
    FileSlice,
    LargeBlockAdapter,
    NoResumableEndpoint,
    Refused,
    SupabaseSettings,
    Transfer,
    TransferLimits,
    UploadGone,
    upload_gone_on,
)
from utils.tus import (
    Deadline,
    Failure,
    StorageUrls,
    explain,
    object_url,
    read_failure,
    retry_delay,
    storage_urls,
    transfer_seconds,
)

log = structlog.get_logger("storage")
T = TypeVar("T")
DOWNLOAD_BLOCK_BYTES = 1024 * 1024
CACHE_CONTROL = "3600"


@dataclass
class SupabaseStorage:
    """Storage over the Supabase Storage API; one instance (one HTTP session) per worker thread."""

    urls: StorageUrls
    key: str
    limits: TransferLimits
    on_retry: Callable[[], None] | None = None  # e.g. a metrics counter

    def __post_init__(self) -> None:
        self.session = requests.Session()
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, LargeBlockAdapter())
        self.auth = {"Authorization": f"Bearer {self.key}", "apikey": self.key}
        self.session.headers.update(self.auth)
        self._rules: dict[str, BucketRules] = {}
        timeout = httpx.Timeout(self.limits.read_timeout, connect=self.limits.connect_timeout)
        self.http_client = httpx.Client(timeout=timeout)
        self.client = SyncStorageClient(self.urls.rest + "/", self.auth, http_client=self.http_client)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()
        self.http_client.close()

    # -- one request, errors translated -------------------------------------------------------

    def _send(self, method: str, url: str, deadline: Deadline, action: str, bucket: str,
              ok: tuple[int, ...] = (200,), size: int | None = None, **kw: Any) -> requests.Response:
        """One HTTP request; raise Refused for an error answer, transient StorageError for network trouble."""
        try:
            resp = self.session.request(method, url, timeout=deadline.timeout(*self.limits.timeouts), **kw)
        except requests.RequestException as exc:
            raise StorageError(f"{action}: {type(exc).__name__}: {exc}", permanent=False) from exc
        if resp.status_code in ok:
            return resp
        failure = read_failure(resp.status_code, resp.text)
        raise Refused(explain(failure, action, bucket, size), failure, resp.headers.get("Retry-After"))

    def _retrying(self, attempt: Callable[[int], T], deadline: Deadline, what: str) -> T:
        """Call attempt(n) until it succeeds, backing off between transient failures."""
        n = 0
        while True:
            try:
                return attempt(n)
            except StorageError as exc:
                # A vanished upload is not retried in place: the caller starts a new one.
                if exc.permanent or isinstance(exc, UploadGone) or n >= self.limits.max_retries:
                    raise
                n += 1
                delay = retry_delay(n, getattr(exc, "retry_after", None))
                if delay >= deadline.remaining():
                    raise StorageError(f"{exc} (gave up: UPLOAD_TIMEOUT_SECONDS={deadline.seconds:g} "
                                       "would pass before the next retry)", permanent=False) from exc
                log.warning("storage_retry", what=what, retry=n, delay_s=round(delay, 2), error=str(exc))
                if self.on_retry is not None:
                    self.on_retry()
                time.sleep(delay)

    # -- Storage interface ----------------------------------------------------------------------

    def bucket_rules(self, bucket: str) -> BucketRules:
        """The bucket's size limit and MIME types, read once per instance."""
        if bucket not in self._rules:
            deadline = Deadline(self.limits.timeout_seconds)
            resp = self._retrying(lambda n: self._send(
                "GET", object_url(self.urls.rest, "bucket", bucket), deadline, "reading bucket rules", bucket),
                deadline, "bucket rules")
            data = resp.json()
            mimes = data.get("allowed_mime_types")
            self._rules[bucket] = BucketRules(data.get("file_size_limit"), tuple(mimes) if mimes else None)
        return self._rules[bucket]

    def upload_file(self, bucket: str, path: str, source: Path, content_type: str,
                    on_progress: ProgressCallback | None = None,
                    journal: UploadJournal | None = None) -> StoredObject:
        size = source.stat().st_size
        self.bucket_rules(bucket).check(bucket, size, content_type)
        t = Transfer(bucket, path, source, content_type, size, BackgroundSha256(source),
                     Deadline(transfer_seconds(self.limits.timeout_seconds, size)), on_progress, journal)
        if 0 < size and size >= self.limits.resumable_threshold:
            self._upload_resumable(t)
        else:
            self._retrying(lambda n: self._upload_standard(t), t.deadline, "upload")
            t.report(size)
        stored = self.object_size(bucket, path)
        if stored != size:
            raise StorageError(f"after uploading {bucket}/{path} the server holds {stored} bytes, not {size}; "
                               "the upload will be retried", permanent=False)
        if journal:
            journal.clear(bucket, path)
        return StoredObject(bucket, path, size, t.sha256.result(), content_type)

    def download_file(self, bucket: str, path: str, dest: Path, max_bytes: int,
                      on_progress: ProgressCallback | None = None) -> int:
        deadline = Deadline(transfer_seconds(self.limits.timeout_seconds, max_bytes))
        url = object_url(self.urls.rest, "object/authenticated", bucket, path)
        with open(dest, "wb") as out:
            return self._retrying(lambda n: self._download_rest(url, out, bucket, path, max_bytes, deadline,
                                                                on_progress), deadline, "download")

    def object_size(self, bucket: str, path: str) -> int | None:
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object/info", bucket, path)
        try:
            resp = self._retrying(lambda n: self._send("GET", url, deadline, "object info", bucket), deadline, "info")
        except Refused as exc:
            if exc.failure.status == 404:
                return None
            raise
        return int(resp.json()["size"])

    def probe(self, bucket: str, path: str, timeout_seconds: float) -> None:
        try:
            self._send("GET", object_url(self.urls.rest, "object/info", bucket, path), Deadline(timeout_seconds),
                       "object info", bucket)
        except Refused as exc:
            if exc.failure.status != 404:
                raise

    def signed_url(self, bucket: str, path: str, expires_in: int) -> str:
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object/sign", bucket, path)
        resp = self._retrying(lambda n: self._send("POST", url, deadline, "signing a URL", bucket,
                                                   json={"expiresIn": expires_in}), deadline, "sign")
        # The API answers with a URL relative to the storage base, without /storage/v1.
        return self.urls.rest + "/" + str(resp.json()["signedURL"]).lstrip("/")

    def delete(self, bucket: str, paths: list[str]) -> None:
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object", bucket)
        self._retrying(lambda n: self._send("DELETE", url, deadline, "deleting objects", bucket,
                                            json={"prefixes": paths}), deadline, "delete")

    # -- uploads ------------------------------------------------------------------------------

    def _upload_standard(self, t: Transfer) -> None:
        """One storage3 upload with upsert and an explicit content type."""
        options = {"content-type": t.content_type, "upsert": "true", "cache-control": CACHE_CONTROL}
        with open(t.source, "rb") as f, translate_storage3(t):
            self.client.from_(t.bucket).upload(t.path, f, options)  # type: ignore[arg-type]

    def _upload_streamed(self, t: Transfer) -> None:
        """One raw request with the file as body and a Content-Length (no TUS on this server)."""
        headers = {"Content-Type": t.content_type, "x-upsert": "true", "cache-control": CACHE_CONTROL,
                   "Content-Length": str(t.size)}
        with open(t.source, "rb") as f:
            self._send("POST", object_url(self.urls.rest, "object", t.bucket, t.path), t.deadline, "upload",
                       t.bucket, size=t.size, data=FileSlice(f, 0, t.size), headers=headers)

    def _upload_resumable(self, t: Transfer) -> None:
        """TUS: resume the journal's upload if it carries this very file, else create one; send every byte."""
        record = t.journal.load(t.bucket, t.path) if t.journal else None
        url = record.url if record and (record.size, record.sha256) == (t.size, t.sha256.result()) else None
        if url:
            log.info("upload_resuming", bucket=t.bucket, path=t.path)
        try:
            self._upload_tus(t, url)
        except StorageError:
            t.record_upload(wait=True)  # so that a retry of the job can continue this upload
            raise

    def _upload_tus(self, t: Transfer, url: str | None) -> None:
        for _ in range(self.limits.max_retries + 1):
            try:
                self._send_chunks(t, url or self._create_upload(t), None if url else 0)
                return
            except NoResumableEndpoint:
                log.info("upload_without_tus", reason="no resumable endpoint on this server")
                self._retrying(lambda n: self._upload_streamed(t), t.deadline, "upload")
                t.report(t.size)
                return
            except UploadGone as exc:
                log.warning("upload_restarting", reason=str(exc))
                url = None
        raise StorageError(f"resumable upload of {t.bucket}/{t.path} kept vanishing on the server", permanent=False)

    def _create_upload(self, t: Transfer) -> str:
        headers = {**t.tus_headers(), "Content-Length": "0"}
        try:
            resp = self._retrying(lambda n: self._send("POST", self.urls.resumable, t.deadline, "creating the upload",
                                                       t.bucket, ok=(201,), size=t.size, headers=headers),
                                  t.deadline, "create upload")
        except Refused as exc:
            if exc.failure.status in (404, 405) and "bucket" not in exc.failure.message.lower():
                raise NoResumableEndpoint(str(exc), permanent=False) from exc
            raise
        url = requests.compat.urljoin(self.urls.resumable + "/", resp.headers["Location"])
        t.record_upload(url)
        return url

    def _send_chunks(self, t: Transfer, url: str, offset: int | None) -> None:
        """PATCH chunk after chunk from the server's offset; a None offset asks the server first."""
        with open(t.source, "rb") as f:
            while offset is None or offset < t.size:
                offset = self._retrying(partial(self._push_chunk, t, url, f, offset), t.deadline, "upload chunk")
                t.report(offset)
                t.record_upload()

    def _push_chunk(self, t: Transfer, url: str, f: IO[bytes], offset: int | None, attempt: int) -> int:
        """Send one chunk from offset (HEAD first when unknown or retrying); return the server's new offset."""
        with upload_gone_on():
            if offset is None or attempt > 0:
                resp = self._send("HEAD", url, t.deadline, "checking the upload", t.bucket, headers=t.tus_base())
                offset = t.offset_from(resp.headers.get("Upload-Offset"))
                if offset == t.size:
                    return offset
            length = t.next_chunk(offset, self.limits.chunk_size)
            headers = {**t.tus_base(), "Upload-Offset": str(offset), "Content-Length": str(length),
                       "Content-Type": "application/offset+octet-stream"}
            resp = self._send("PATCH", url, t.deadline, "uploading a chunk", t.bucket, ok=(204, 200), size=t.size,
                              data=FileSlice(f, offset, length), headers=headers)
            return t.offset_from(resp.headers.get("Upload-Offset"))

    # -- downloads ----------------------------------------------------------------------------

    def _download_rest(self, url: str, out: IO[bytes], bucket: str, path: str, max_bytes: int,
                       deadline: Deadline, on_progress: ProgressCallback | None) -> int:
        """Stream the object (or the part after what out already holds) to out; return the total size."""
        have = out.tell()
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._send("GET", url, deadline, f"downloading {bucket}/{path}", bucket, ok=(200, 206),
                        stream=True, headers=headers) as resp:
            if resp.status_code == 200 and have:
                out.seek(0)  # the server ignored Range: start over
                out.truncate()
            total = out.tell() + int(resp.headers.get("Content-Length", "0"))
            if total > max_bytes:
                raise input_too_large(total, max_bytes)
            try:
                for block in resp.iter_content(DOWNLOAD_BLOCK_BYTES):
                    out.write(block)
                    if on_progress:
                        on_progress(out.tell(), total)
            except requests.RequestException as exc:
                out.flush()
                raise StorageError(f"download of {bucket}/{path} broke off at {out.tell()} bytes: {exc}",
                                   permanent=False) from exc
        if out.tell() != total:
            raise StorageError(f"download of {bucket}/{path} ended at {out.tell()} of {total} bytes", permanent=False)
        return total


@contextmanager
def translate_storage3(t: Transfer) -> Iterator[None]:
    """storage3/httpx errors as StorageError, classified like our own requests."""
    try:
        yield
    except StorageApiError as exc:
        status = int(exc.status) if str(exc.status).isdigit() else 500
        failure = Failure(status, str(exc.code), str(exc.message))
        raise Refused(explain(failure, "upload", t.bucket, t.size), failure) from exc
    except httpx.HTTPError as exc:
        raise StorageError(f"upload: {type(exc).__name__}: {exc}", permanent=False) from exc


def open_supabase_storage(settings: SupabaseSettings, on_retry: Callable[[], None] | None = None) -> SupabaseStorage:
    """The backend for SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY; one per worker slot."""
    if not settings.supabase_url or not settings.supabase_service_role_key:
        raise StorageError("SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY must both be set", permanent=True)
    return SupabaseStorage(storage_urls(settings.supabase_url), settings.supabase_service_role_key,
                           TransferLimits.from_settings(settings), on_retry)


__all__ = ["SupabaseStorage", "open_supabase_storage"]
