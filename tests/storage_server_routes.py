"""Request handling for tests/storage_server.py: REST object routes and TUS uploads."""

from __future__ import annotations

import json
import os
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.storage_bodies import BLOCK, encode, rest_error, unwrap_multipart
from tests.storage_server import (
    StorageServer,
    drop,
    new_upload_id,
    split_path,
)
from tests.storage_server_tus import TusRoutes

GATEWAY_HTML = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
                b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class StorageHandler(TusRoutes, BaseHTTPRequestHandler):
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
        self.note(status, (headers or {}).get("Upload-Offset", ""))  # before the client can see the answer
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

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
                self.cut(left)
                return False
        return True

    def cut(self, left: int) -> None:
        """Cut the connection mid-body: silently, or (gateway fault) as a proxy in front answers when its
        upstream resets: 502 with an HTML body, then the rest of the body read and dropped (a lingering close)."""
        self.close_connection = True
        if self.server_state.faults.gateway:
            self.send_response(502, "Bad Gateway")
            for name, value in {"Content-Type": "text/html", "Content-Length": str(len(GATEWAY_HTML)),
                                "Connection": "close"}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(GATEWAY_HTML)
            self.note(502)
            while left > 0 and (block := self.rfile.read(min(BLOCK, left))):
                left -= len(block)
        drop(self.connection)

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
        self.send_header("Cache-Control", self.server_state.cache_control.header(bucket, path))
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
