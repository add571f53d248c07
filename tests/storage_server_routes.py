"""Request handling for tests/storage_server.py: REST object routes and TUS uploads."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.storage_bodies import BLOCK, encode, parse_metadata, rest_error, unwrap_multipart
from tests.storage_server import (
    PREFIX,
    StorageServer,
    Upload,
    drop,
    new_upload_id,
    split_path,
)


class StorageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: StorageServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def answer(self, status: int, body: bytes = b"", content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status, "" if status == 201 else None)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**(headers or {}), **self.server_state.fault_headers()}.items():
            self.send_header(name, value)  # a Connection: close also ends the connection after this answer
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.note(status, (headers or {}).get("Upload-Offset", ""))

    def note(self, status: int, offset: str = "") -> None:
        with self.server_state.lock:
            self.server_state.log.append((self.command, self.path, status, offset))

    def rest_fail(self, status: int, **kw: Any) -> None:
        self.answer(400, encode(rest_error(status, **kw)))

    def tus_fail(self, status: int, text: str) -> None:
        self.answer(status, text.encode(), "text/plain")

    def drain(self) -> None:
        self.read_body(None)

    def read_body(self, out: Any, drop_after: int | None = None) -> bool:
        """Copy the request body to out (or discard it); False if the connection was cut."""
        left, got = int(self.headers.get("Content-Length", "0")), 0
        self.server_state.stall_before_body(left)
        while left:
            block = self.rfile.read(min(BLOCK, left, drop_after - got if drop_after is not None else BLOCK))
            if not block:
                return False
            if out is not None:
                out.write(block)
            got += len(block)
            left -= len(block)
            self.server_state.count(len(block))
            if drop_after is not None and got >= drop_after and left:
                out.flush() if out is not None else None
                drop(self.connection)
                self.close_connection = True
                return False
        return True

    def authorised(self, tus: bool) -> bool:
        auth = self.headers.get("Authorization")
        if auth == f"Bearer {self.server_state.key}":
            return True
        self.drain()
        if tus:
            self.tus_fail(403, "invalid signature")
        elif auth is None:
            self.answer(400, encode({"statusCode": "400", "error": "InvalidRequest", "code": "InvalidRequest",
                                     "message": "headers must have required property 'authorization'"}))
        else:
            self.rest_fail(403)
        return False

    def injected(self) -> bool:
        if self.server_state.take("echo_headers"):
            self.drain()
            echoed = json.dumps({"statusCode": "500", "error": "internal",
                                 "message": f"bad request headers: {dict(self.headers)}"})
            self.answer(500, echoed.encode())
            return True
        status = self.server_state.take("fail_statuses")
        if status is None:
            return False
        self.drain()
        self.answer(status, b"injected fault", "text/plain", {"Retry-After": "0"})
        return True

    def dispatch(self) -> None:
        route, bucket, path = split_path(self.path)
        if route == "object/sign" and self.command == "GET":
            return self.serve_object(bucket, path, signed=True)
        if self.command in ("POST", "PUT", "PATCH") and "Content-Length" not in self.headers:
            self.server_state.without_length += 1
        if self.command == "PATCH":
            self.server_state.arm_patch_faults()
        if not self.authorised(route.startswith("upload")) or self.injected():
            return None
        handler = getattr(self, f"{self.command.lower()}_{route.replace('/', '_')}", None)
        if handler is None:
            self.drain()
            return self.rest_fail(404)
        return handler(bucket, path)  # type: ignore[no-any-return]

    do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = dispatch

    # -- REST ---------------------------------------------------------------------------------

    def get_bucket(self, bucket: str, path: str) -> None:
        rules = self.server_state.buckets.get(bucket)
        if rules is None:
            return self.rest_fail(404, bucket_missing=True)
        return self.answer(200, encode(rules))

    def post_object(self, bucket: str, path: str) -> None:
        if not path:
            return self.rest_fail(404)
        tmp = Path(tempfile.mkstemp(dir=self.server_state.root)[1])
        try:
            with open(tmp, "wb") as out:
                if not self.read_body(out):
                    return None
            mime = self.headers.get("Content-Type", "application/octet-stream")
            if mime.startswith("multipart/form-data"):
                mime = unwrap_multipart(tmp, mime)
            target = self.server_state.object_file(bucket, path)
            refusal = self.server_state.refusal(bucket, tmp.stat().st_size, mime)
            if refusal:
                return self.rest_fail(refusal, mime=mime, bucket_missing=refusal == 404)
            if target.exists() and self.headers.get("x-upsert") != "true" and self.command == "POST":
                return self.rest_fail(409)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return self.answer(200, encode({"Key": f"{bucket}/{path}", "Id": new_upload_id()}))
        finally:
            tmp.unlink(missing_ok=True)

    put_object = post_object

    def get_object_authenticated(self, bucket: str, path: str) -> None:
        self.serve_object(bucket, path)

    get_object = head_object = head_object_authenticated = get_object_authenticated

    def serve_object(self, bucket: str, path: str, signed: bool = False) -> None:
        source = self.server_state.object_file(bucket, path)
        if not source.is_file() or (signed and "token=" not in self.path):
            return self.rest_fail(404)
        size = source.stat().st_size
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        headers = {"Content-Range": f"bytes {start}-{size - 1}/{size}"} if start else {}
        self.send_response(206 if start else 200)
        self.note(206 if start else 200)
        self.send_header("Content-Length", str(size - start))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return None
        cut = self.server_state.take("drop_download_after")
        with open(source, "rb") as src:
            src.seek(start)
            sent = 0
            while block := src.read(BLOCK):
                if cut is not None and sent + len(block) > cut:
                    self.wfile.write(block[: cut - sent])
                    self.wfile.flush()
                    drop(self.connection)
                    self.close_connection = True
                    return None
                self.wfile.write(block)
                sent += len(block)
        return None

    def get_object_info(self, bucket: str, path: str) -> None:
        source = self.server_state.object_file(bucket, path)
        if not source.is_file():
            return self.rest_fail(404)
        return self.answer(200, encode({"name": path, "size": source.stat().st_size}))

    def post_object_sign(self, bucket: str, path: str) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if not self.server_state.object_file(bucket, path).is_file():
            return self.rest_fail(404)
        url = f"/object/sign/{bucket}/{path}?token=t{int(body['expiresIn'])}"
        return self.answer(200, encode({"signedURL": url}))

    def delete_object(self, bucket: str, path: str) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        self.server_state.delete_objects(bucket, list(body.get("prefixes", [])))
        return self.answer(200, b"[]")

    # -- TUS ----------------------------------------------------------------------------------

    def post_upload_resumable(self, bucket: str, path: str) -> None:
        state = self.server_state
        self.drain()
        if state.faults.no_tus:
            return self.answer(404, b"Route POST:/upload/resumable not found", "text/plain")
        meta = parse_metadata(self.headers.get("Upload-Metadata", ""))
        length = int(self.headers["Upload-Length"])
        refusal = state.refusal(meta["bucketName"], length, meta["contentType"])
        texts = {413: "Maximum size exceeded", 415: f"mime type {meta['contentType']} is not supported",
                 404: "Bucket not found"}
        if refusal:
            return self.tus_fail(refusal, texts[refusal])
        upload_id = new_upload_id()
        file = state.root / "uploads" / upload_id
        file.parent.mkdir(exist_ok=True)
        file.touch()
        state.uploads[upload_id] = Upload(meta["bucketName"], meta["objectName"], length, meta["contentType"], file)
        location = f"http://{self.headers['Host']}{PREFIX}/upload/resumable/{upload_id}"
        return self.answer(201, headers={"Location": location, "Tus-Resumable": "1.0.0"})

    def known_upload(self, upload_id: str) -> Upload | None:
        if self.server_state.take("forget_uploads"):
            self.server_state.uploads.pop(upload_id, None)
        upload = self.server_state.uploads.get(upload_id)
        if upload is None:
            self.drain()
            self.tus_fail(404, "Upload not found")
        return upload

    def head_upload_resumable(self, upload_id: str, _: str) -> None:
        upload = self.known_upload(upload_id)
        if upload:
            self.answer(200, headers={"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
                                      "Tus-Resumable": "1.0.0", "Cache-Control": "no-store"})

    def patch_upload_resumable(self, upload_id: str, _: str) -> None:
        upload = self.known_upload(upload_id)
        if upload is None:
            return None
        if not upload.lock.acquire(blocking=False):
            self.drain()
            return self.tus_fail(409, "File is locked")
        try:
            stall = self.patch_locked(upload_id, upload)
        finally:
            upload.lock.release()
        if stall:  # the bytes are kept; the answer never comes
            self.server_state.stop_event.wait(5)
            drop(self.connection)
            self.close_connection = True

    def patch_locked(self, upload_id: str, upload: Upload) -> bool:
        """Apply one PATCH; True when the answer should stall."""
        state = self.server_state
        offset, length = int(self.headers["Upload-Offset"]), int(self.headers.get("Content-Length", "0"))
        target = state.object_file(upload.bucket, upload.path)
        if offset != upload.offset:
            self.drain()
            self.tus_fail(409, "Upload-Offset conflict")
            return False
        if offset + length > upload.length:
            self.drain()
            self.tus_fail(413, "upload's size exceeded")
            return False
        if target.exists() and self.headers.get("x-upsert") != "true":
            self.drain()
            self.tus_fail(409, "The resource already exists")
            return False
        if state.faults.patch_delay_seconds:
            state.stop_event.wait(state.faults.patch_delay_seconds)
        with open(upload.file, "ab") as out:
            if not self.read_body(out, state.take("drop_patch_after")):
                return False
        if state.take("stall_patches"):
            return True
        headers = {"Upload-Offset": str(upload.offset), "Tus-Resumable": "1.0.0"}
        if upload.offset == upload.length:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(upload.file, target)
            upload.completed = True
            headers["Tus-Complete"] = "1"
        self.answer(204, headers=headers)
        return False

