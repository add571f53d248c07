"""Bodies of tests/storage_server.py: REST error JSON, TUS metadata and multipart uploads."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

BLOCK = 256 * 1024
ERRORS = {
    413: ("Payload too large", "The object exceeded the maximum allowed size", "EntityTooLarge"),
    415: ("invalid_mime_type", "mime type {mime} is not supported", "InvalidMimeType"),
    409: ("Duplicate", "The resource already exists", "KeyAlreadyExists"),
    404: ("not_found", "Object not found", "NoSuchKey"),
    403: ("Unauthorized", "invalid signature", "AccessDenied"),
}

multipart = threading.local()  # the `metadata` and `cacheControl` fields of the multipart upload on this thread


def parse_metadata(header: str) -> dict[str, str]:
    pairs = (item.strip().split(" ", 1) for item in header.split(",") if item.strip())
    return {k: base64.b64decode(v).decode() if v else "" for k, v in pairs}


def unwrap_multipart(tmp: Path, content_type: str) -> str:
    """Keep only the `file` part's content in tmp (it is the last part); return its MIME type."""
    boundary = content_type.split("boundary=")[1].strip('"').encode()
    size = tmp.stat().st_size
    with open(tmp, "rb") as f:
        head = f.read(64 * 1024)
    part = head.index(b'name="file"')
    start = head.index(b"\r\n\r\n", part) + 4
    multipart.metadata = multipart_field(head, b"metadata")
    multipart.cache_control = multipart_text(head, b"cacheControl")
    headers = head[part:start].decode(errors="replace").lower()
    mime = headers.split("content-type:")[1].split("\r\n")[0].strip() if "content-type:" in headers else ""
    end = size - len(b"\r\n--" + boundary + b"--\r\n")
    with open(tmp, "rb") as src, open(tmp.with_suffix(".body"), "wb") as dst:
        src.seek(start)
        left = end - start
        while left > 0:
            block = src.read(min(BLOCK, left))
            dst.write(block)
            left -= len(block)
    os.replace(tmp.with_suffix(".body"), tmp)
    return mime or "application/octet-stream"


def multipart_field(head: bytes, name: bytes) -> Any:
    """The JSON value of a multipart form field that comes before the file, or None."""
    text = multipart_text(head, name)
    return None if text is None else json.loads(text)


def multipart_text(head: bytes, name: bytes) -> str | None:
    """The text of a multipart form field that comes before the file, or None."""
    marker = b'name="' + name + b'"'
    if marker not in head:
        return None
    start = head.index(b"\r\n\r\n", head.index(marker)) + 4
    return head[start:head.index(b"\r\n--", start)].decode()


def rest_error(status: int, mime: str = "", bucket_missing: bool = False) -> dict[str, str]:
    """The JSON body the real server sends (inside an HTTP 400) for a REST error."""
    if bucket_missing:
        return {"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found",
                "code": "NoSuchBucket"}
    error, message, code = ERRORS[status]
    return {"statusCode": str(status), "error": error, "message": message.format(mime=mime), "code": code}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
