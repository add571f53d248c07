"""Sending one file to Storage: storage3 for small files, TUS in chunks read from disk for large ones.

A resumable upload resumes from the server's offset after any failure, and from the job's
journal when a retried job uploads the very same file again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import IO

import httpx
import requests
import structlog
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError

from utils.storage import StorageError
from utils.supabase.http import StorageHttp
from utils.supabase.pipeline import PatchConnection, PipelineBroken, send_pipelined
from utils.supabase.transfer import FileSlice, NoResumableEndpoint, Refused, Transfer, UploadGone, upload_gone_on
from utils.supabase.tus import LOCK_DRAIN_SECONDS, TUS_VERSION, Failure, StorageUrls, explain, object_url

log = structlog.get_logger("storage")
# A single-request upload's object carries the file's sha256 in its user metadata, so a retried job
# can tell from the object's info alone that Storage already holds this very file
# (`SupabaseStorage.object_digest`). A TUS upload's hash goes to the job's journal instead.
SHA256_METADATA_KEY = "sha256"


@dataclass
class Uploader:
    """Uploads over one StorageHttp session, plus the storage3 client for small files."""

    http: StorageHttp
    urls: StorageUrls

    def __post_init__(self) -> None:
        limits = self.http.limits
        self.http_client = httpx.Client(timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout))
        self.client = SyncStorageClient(self.urls.rest + "/", self.http.auth, http_client=self.http_client)
        self.patches = PatchConnection({**self.http.auth, "Tus-Resumable": TUS_VERSION, "x-upsert": "true"})
        # A raw connection cannot go through an HTTP proxy; requests can.
        self.pipelining = limits.pipelining and not requests.utils.get_environ_proxies(self.urls.resumable)

    def close(self) -> None:
        self.http_client.close()
        self.patches.close()

    def upload(self, t: Transfer) -> None:
        """Send every byte of t: resumable from UPLOAD_RESUMABLE_THRESHOLD_MB up, else in one request."""
        if 0 < t.size and t.size >= self.http.limits.resumable_threshold:
            self._upload_resumable(t)
        else:
            self.http.retrying(lambda n: self._upload_standard(t), t.deadline, "upload")
            t.report(t.size)

    def _upload_standard(self, t: Transfer) -> None:
        """One storage3 upload with upsert and an explicit content type."""
        options = {"content-type": t.content_type, "upsert": "true", "cache-control": t.cache_control,
                   "metadata": {SHA256_METADATA_KEY: t.sha256.result()}}
        with open(t.source, "rb") as f, translate_storage3(t):
            self.client.from_(t.bucket).upload(t.path, f, options)  # type: ignore[arg-type]

    def _upload_streamed(self, t: Transfer) -> None:
        """One raw request with the file as body and a Content-Length (no TUS on this server)."""
        metadata = json.dumps({SHA256_METADATA_KEY: t.sha256.result()}).encode()
        # A raw body's cache-control header is kept as sent, where the form field and TUS take seconds.
        headers = {"Content-Type": t.content_type, "x-upsert": "true",
                   "cache-control": f"max-age={t.cache_control}",
                   "Content-Length": str(t.size), "x-metadata": base64.b64encode(metadata).decode()}
        with open(t.source, "rb") as f:
            self.http.send("POST", object_url(self.urls.rest, "object", t.bucket, t.path), t.deadline, "upload",
                           t.bucket, size=t.size, data=FileSlice(f, 0, t.size), headers=headers)

    def _upload_resumable(self, t: Transfer) -> None:
        """TUS: resume the journal's unfinished upload if it carries this very file, else create one;
        send every byte. A finished one is never resumed: its object may have gone since."""
        record = t.journal.load(t.bucket, t.path) if t.journal else None
        if record and not record.stored and (record.size, record.sha256) == (t.size, t.sha256.result()):
            t.use_upload(record.url, recorded=True)
            log.info("upload_resuming", bucket=t.bucket, path=t.path)
        elif t.journal and record:
            # The object is about to change: a crash before the new upload is journalled must not
            # leave a record that a later attempt would resume, or trust, for other bytes.
            t.journal.clear(t.bucket, t.path)
        try:
            self._upload_tus(t, t.upload_url)
        except StorageError:
            t.record_upload(wait=True)  # so that a retry of the job can continue this upload
            raise
        t.record_stored()

    def _upload_tus(self, t: Transfer, url: str | None) -> None:
        # A journalled upload the server no longer holds (or that had finished) costs no retry.
        for _ in range(self.http.limits.max_retries + 1 + (url is not None)):
            try:
                self._send_chunks(t, url or self._create_upload(t), None if url else 0)
                return
            except NoResumableEndpoint:
                log.info("upload_without_tus", reason="no resumable endpoint on this server")
                self.http.retrying(lambda n: self._upload_streamed(t), t.deadline, "upload")
                t.report(t.size)
                return
            except UploadGone as exc:
                log.warning("upload_restarting", reason=str(exc))
                url = None
        raise StorageError(f"resumable upload of {t.bucket}/{t.path} kept vanishing on the server", permanent=False)

    def _create_upload(self, t: Transfer) -> str:
        headers = {**t.tus_headers(), "Content-Length": "0"}
        try:
            resp = self.http.retrying(lambda n: self.http.send(
                "POST", self.urls.resumable, t.deadline, "creating the upload", t.bucket, ok=(201,), size=t.size,
                headers=headers), t.deadline, "create upload")
        except Refused as exc:
            if exc.failure.status in (404, 405) and "bucket" not in exc.failure.message.lower():
                raise NoResumableEndpoint(str(exc), permanent=False) from exc
            raise
        url = requests.compat.urljoin(self.urls.resumable + "/", resp.headers["Location"])
        t.use_upload(url, recorded=False)
        t.record_upload()
        return url

    def _send_chunks(self, t: Transfer, url: str, offset: int | None) -> None:
        """PATCH chunk after chunk from the server's offset, pipelined while that works; a None offset
        asks the server first."""
        with open(t.source, "rb") as f:
            while offset is None or offset < t.size:
                failure = None
                if offset is not None and self._pipelines(t, offset):
                    offset, failure = self._send_pipelined(t, url, f, offset)
                    if offset is not None:  # done, or nothing was sent: go on from there
                        continue
                offset = self.http.retrying(partial(self._push_chunk, t, url, f, offset, failure), t.deadline,
                                            "upload chunk")
                self._confirmed(t, offset)

    def _pipelines(self, t: Transfer, offset: int) -> bool:
        """Pipeline when it can gain: two chunks or more to go, and no pipeline broke."""
        return self.pipelining and not t.one_at_a_time and t.size - offset > self.http.limits.chunk_size

    def _send_pipelined(self, t: Transfer, url: str, f: IO[bytes],
                        offset: int) -> tuple[int | None, StorageError | None]:
        """Send the rest pipelined: (size, None). On a break the rest of this file goes one chunk at a
        time: from offset if nothing was sent; else from the server's offset (None), after the error
        that counts as the next chunk's first try, unless pipelining itself was at fault."""
        limits = self.http.limits
        t.sent = True
        try:
            return send_pipelined(self.patches, url, f, (offset, t.size), limits.chunk_size,
                                  lambda: t.deadline.timeout(*limits.timeouts), partial(self._confirmed, t)), None
        except PipelineBroken as exc:
            t.one_at_a_time = True
            if exc.unsupported:  # the server, a gateway or the TLS set-up does not take it: stop trying
                self.pipelining = False
            log.warning("upload_pipeline_broken", bucket=t.bucket, path=t.path, reason=str(exc),
                        pipelining=self.pipelining)
            a = exc.answer
            if not exc.sent:
                return offset, None
            if exc.unsupported or (a is not None and a.status < 300):  # no failed try: ask the server
                return None, None
            if a is None:
                return None, StorageError(f"uploading a chunk: {exc}", permanent=False)
            return None, Refused.answer(a.status, a.body, a.retry_after, "uploading a chunk", t.bucket, t.size)

    @staticmethod
    def _confirmed(t: Transfer, offset: int) -> None:
        t.report(offset)
        t.record_upload()

    def _push_chunk(self, t: Transfer, url: str, f: IO[bytes], offset: int | None, failed: StorageError | None,
                    attempt: int) -> int:
        """Send one chunk from offset (HEAD first when unknown or retrying); return the server's new offset.
        `failed` is how the chunk's first try already ended (a pipeline's break)."""
        with upload_gone_on():
            if failed is not None and attempt == 0:
                raise failed
            if offset is None or attempt > 0:
                resp = self.http.send("HEAD", url, t.deadline, "checking the upload", t.bucket,
                                      min_read=2 * LOCK_DRAIN_SECONDS, headers=t.tus_base())
                offset = t.offset_from(resp.headers.get("Upload-Offset"))
                if offset == t.size:
                    if not t.sent:
                        # Finished by an earlier attempt that died before journalling it: the object may
                        # have been replaced since (by a smaller file of another attempt): send it again.
                        raise UploadGone("the journal's upload had finished in an earlier attempt", permanent=False)
                    return offset
            length = t.next_chunk(offset, self.http.limits.chunk_size)
            t.sent = True
            headers = {**t.tus_base(), "Upload-Offset": str(offset), "Content-Length": str(length),
                       "Content-Type": "application/offset+octet-stream"}
            resp = self.http.send("PATCH", url, t.deadline, "uploading a chunk", t.bucket, ok=(204, 200),
                                  size=t.size, data=FileSlice(f, offset, length), headers=headers)
            return t.offset_from(resp.headers.get("Upload-Offset"))


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
