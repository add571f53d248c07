"""Supabase Storage backend: streamed, resumable, retried transfers that never hold a file in memory.

Small files go through storage3 (supabase-py's storage client); larger ones through a TUS
upload in chunks read from disk, resumed from the server's offset after any failure
(`utils.supabase.upload`). Every HTTP error and exception is turned into `StorageError`
once, in `utils.supabase.http` and `utils.supabase.upload`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from utils.storage import (
    BucketRules,
    ObjectDigest,
    ProgressCallback,
    SpaceNeeded,
    StorageError,
    StoredObject,
    UploadJournal,
    explain_full_disk,
    input_too_large,
)
from utils.supabase.http import StorageHttp
from utils.supabase.transfer import (
    CACHE_CONTROL_SECONDS,
    BackgroundSha256,
    Refused,
    SupabaseSettings,
    Transfer,
    TransferLimits,
)
from utils.supabase.tus import Deadline, StorageUrls, object_url, storage_urls, transfer_seconds
from utils.supabase.upload import SHA256_METADATA_KEY, Uploader

DOWNLOAD_BLOCK_BYTES = 1024 * 1024


@dataclass
class SupabaseStorage:
    """Storage over the Supabase Storage API; one instance (one HTTP session) per worker thread."""

    urls: StorageUrls
    key: str
    limits: TransferLimits
    on_retry: Callable[[], None] | None = None  # e.g. a metrics counter

    def __post_init__(self) -> None:
        self.http = StorageHttp(self.key, self.limits, self.on_retry)
        self.uploader = Uploader(self.http, self.urls)
        self._rules: dict[str, BucketRules] = {}

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()
        self.uploader.close()

    def bucket_rules(self, bucket: str) -> BucketRules:
        """The bucket's size limit and MIME types, read once per instance."""
        if bucket not in self._rules:
            deadline = Deadline(self.limits.timeout_seconds)
            resp = self.http.retrying(lambda n: self.http.send(
                "GET", object_url(self.urls.rest, "bucket", bucket), deadline, "reading bucket rules", bucket),
                deadline, "bucket rules")
            data = resp.json()
            mimes = data.get("allowed_mime_types")
            self._rules[bucket] = BucketRules(data.get("file_size_limit"), tuple(mimes) if mimes else None)
        return self._rules[bucket]

    def upload_file(self, bucket: str, path: str, source: Path, content_type: str,
                    on_progress: ProgressCallback | None = None,
                    journal: UploadJournal | None = None, cache_control: str | None = None) -> StoredObject:
        size = source.stat().st_size
        self.bucket_rules(bucket).check(bucket, size, content_type)
        t = Transfer(bucket, path, source, content_type, size, BackgroundSha256(source),
                     Deadline(transfer_seconds(self.limits.timeout_seconds, size)), on_progress, journal,
                     cache_control=cache_control or CACHE_CONTROL_SECONDS)
        # No info request afterwards: the server answered the last PATCH with Upload-Offset equal to
        # the size, or the single upload with 200, after storing the object. On a 40 ms link that
        # request cost each HLS segment 40 ms more (bench/delivery.py).
        self.uploader.upload(t)
        return StoredObject(bucket, path, size, t.sha256.result(), content_type)

    def download_file(self, bucket: str, path: str, dest: Path, max_bytes: int,
                      on_progress: ProgressCallback | None = None) -> int:
        deadline = Deadline(transfer_seconds(self.limits.timeout_seconds, max_bytes))
        url = object_url(self.urls.rest, "object/authenticated", bucket, path)
        with explain_full_disk(f"{bucket}/{path}") as need, open(dest, "wb") as out:
            return self.http.retrying(lambda n: self._download_rest(url, out, bucket, path, max_bytes, deadline,
                                                                    on_progress, need), deadline, "download")

    def object_digest(self, bucket: str, path: str) -> ObjectDigest | None:
        """From the object's info: its size, and the sha256 the worker put in its user metadata on upload."""
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object/info", bucket, path)
        try:
            resp = self.http.retrying(lambda n: self.http.send("GET", url, deadline, "object info", bucket),
                                      deadline, "info")
        except Refused as exc:
            if exc.failure.status == 404:
                return None
            raise
        info = resp.json()
        sha256 = (info.get("metadata") or {}).get(SHA256_METADATA_KEY)
        return ObjectDigest(int(info["size"]), sha256 if isinstance(sha256, str) else None)

    def probe(self, bucket: str, path: str, timeout_seconds: float) -> None:
        try:
            self.http.send("GET", object_url(self.urls.rest, "object/info", bucket, path), Deadline(timeout_seconds),
                           "object info", bucket)
        except Refused as exc:
            if exc.failure.status != 404:
                raise

    def signed_url(self, bucket: str, path: str, expires_in: int) -> str:
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object/sign", bucket, path)
        resp = self.http.retrying(lambda n: self.http.send("POST", url, deadline, "signing a URL", bucket,
                                                           json={"expiresIn": expires_in}), deadline, "sign")
        # The API answers with a URL relative to the storage base, without /storage/v1.
        return self.urls.rest + "/" + str(resp.json()["signedURL"]).lstrip("/")

    def delete(self, bucket: str, paths: list[str]) -> None:
        deadline = Deadline(self.limits.timeout_seconds)
        url = object_url(self.urls.rest, "object", bucket)
        self.http.retrying(lambda n: self.http.send("DELETE", url, deadline, "deleting objects", bucket,
                                                    json={"prefixes": paths}), deadline, "delete")

    def _download_rest(self, url: str, out: IO[bytes], bucket: str, path: str, max_bytes: int,
                       deadline: Deadline, on_progress: ProgressCallback | None, need: SpaceNeeded) -> int:
        """Stream the object (or the part after what out already holds) to out; return the total size."""
        have = out.tell()
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.send("GET", url, deadline, f"downloading {bucket}/{path}", bucket, ok=(200, 206),
                            stream=True, headers=headers) as resp:
            if resp.status_code == 200 and have:
                out.seek(0)  # the server ignored Range: start over
                out.truncate()
            total = out.tell() + int(resp.headers.get("Content-Length", "0"))
            if total > max_bytes:
                raise input_too_large(total, max_bytes)
            need.bytes = total
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


def open_supabase_storage(settings: SupabaseSettings, on_retry: Callable[[], None] | None = None) -> SupabaseStorage:
    """The backend for SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY; one per worker slot."""
    if not settings.supabase_url or not settings.supabase_service_role_key:
        raise StorageError("SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY must both be set", permanent=True)
    return SupabaseStorage(storage_urls(settings.supabase_url), settings.supabase_service_role_key,
                           TransferLimits.from_settings(settings), on_retry)


__all__ = ["SupabaseStorage", "open_supabase_storage"]
