"""A local Supabase Storage API server for tests, with faults that can be switched on.

It answers the subset in STORAGE_API.md the way the real server does: REST errors as HTTP 400
with a JSON body whose statusCode is a string; TUS errors with real statuses and text/plain.
Objects and uploads live on disk, so large files do not sit in memory.

The network can be modelled, at construction or at any time after (plain attributes):
- `request_delay_s`: seconds every request waits before it is handled (the server's cost per
  request, or a round trip for a client that sends one request at a time; default 0);
- `round_trip_s`: seconds every answer takes to reach the client while the server reads on, as a
  link's round trip does: a client that pipelines its requests overlaps it (default 0);
- `bandwidth_bytes_per_s`: a cap on request bodies read and response bodies written, shared by all
  connections, one budget each way (`tests/storage_link.py`; default None, no cap).
For example `StorageServer(key, request_delay_s=0.04, bandwidth_bytes_per_s=12_500_000)` is a 40 ms,
100 Mbit/s network. Like the real server, a TUS upload whose PATCH broke off stays locked for
`lock_drain_s` (default 3 s) before a HEAD answers (`tests/storage_server_tus.py`); with the
`gateway` fault on, such a cut reaches the client as a proxy's 502 with an HTML body.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.storage_bodies import encode, multipart, parse_metadata
from tests.storage_cache import CacheControls
from tests.storage_link import DelayedWriter, Link, PacedReader, PacedWriter

PREFIX = "/storage/v1"

class QuietServer(ThreadingHTTPServer):
    """Connections cut on purpose are expected here; do not print their tracebacks."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class Faults:
    """Switchable misbehaviour; each list is consumed one entry per matching request."""

    drop_patch_after: list[int] = field(default_factory=list)  # close the socket after N body bytes
    drop_download_after: list[int] = field(default_factory=list)
    fail_statuses: list[int] = field(default_factory=list)  # answer the next requests with these (500, 503, 409)
    stall_patches: int = 0  # read the body, then answer nothing until the client gives up
    stall_body_seconds: list[float] = field(default_factory=list)  # wait this long before reading the next body
    close_after_answer: bool = False  # Connection: close on every answer: each request comes on a new connection
    forget_uploads: int = 0  # the next HEAD/PATCH finds its upload gone (404)
    patch_delay_seconds: float = 0.0
    no_tus: bool = False  # answer 404 to TUS creates, like a server without the endpoint
    on_patch: dict[int, dict[str, Any]] = field(default_factory=dict)  # PATCH number (1-based) -> faults to set
    echo_headers: int = 0  # answer the next requests 500 with the request's headers in the body, as some proxies do
    request_delay_seconds: float = 0.0  # wait this long before handling each request
    gateway: bool = False  # a proxy in front: a connection cut mid-body reaches the client as 502 with HTML
    keep_short: list[int] = field(default_factory=list)  # keep N bytes fewer of the next PATCH bodies, and say so
    watch_pipelining: bool = False  # before each PATCH answer, wait up to 0.5 s to see if the next request came
    refuse_pipelined: bool = False  # answer 409 to a PATCH sent before the last answer, as concurrent writers get


@dataclass
class Upload:
    bucket: str
    path: str
    length: int
    content_type: str
    file: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    completed: bool = False
    drained_at: float = 0.0  # after a PATCH broke off, HEAD and PATCH wait until then (time.monotonic())

    @property
    def offset(self) -> int:
        return self.length if self.completed else self.file.stat().st_size


class StorageServer:
    """The server's state: buckets, objects on disk, uploads, faults and counters."""

    def __init__(self, key: str = "service-key", request_delay_s: float = 0.0,
                 bandwidth_bytes_per_s: float | None = None, lock_drain_s: float = 3.0,
                 round_trip_s: float = 0.0, tls: tuple[Path, Path] | None = None) -> None:
        self.key = key
        self.request_delay_s, self.bandwidth_bytes_per_s = request_delay_s, bandwidth_bytes_per_s
        self.round_trip_s = round_trip_s  # answers reach the client this late; the server reads on meanwhile
        self.pipelined: list[bool] = []  # per PATCH answered, with faults.watch_pipelining: was the next one sent?
        self.lock_drain_s = lock_drain_s  # how long an upload stays locked after a PATCH broke off
        self.root = Path(tempfile.mkdtemp(prefix="mw-storage-server-"))
        self.buckets: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, Upload] = {}
        self.faults = Faults()
        self.bytes_received = 0
        self.patches = 0
        self.without_length = 0  # bodies sent chunked, which the real server lets past the size limit
        self.log: list[tuple[str, str, int, str]] = []  # method, path, status, Upload-Offset sent
        # Called after each DELETE with (bucket, names): a test keeps its storage.objects rows in step with it.
        self.on_delete: Callable[[str, list[str]], None] | None = None
        self.on_create: Callable[[], None] | None = None  # called as each TUS create is handled
        self.user_metadata: dict[tuple[str, str], Any] = {}  # (bucket, path) -> the object's user metadata
        self.upload_user_metadata: dict[str, Any] = {}  # TUS upload id -> user metadata for its object
        self.cache_control = CacheControls()  # what each object is served with as Cache-Control
        self.in_flight = self.max_in_flight = 0  # requests being handled now, and the most at once
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.uplink = Link(lambda: self.bandwidth_bytes_per_s, self.stop_event)  # what the server reads
        self.downlink = Link(lambda: self.bandwidth_bytes_per_s, self.stop_event)  # what it writes
        self.httpd = QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True
        self.scheme = "https" if tls else "http"
        if tls:  # (certificate, key): HTTPS, as hosted Supabase is
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> StorageServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    def add_bucket(self, bucket: str, limit: int | None = None, mimes: list[str] | None = None) -> None:
        self.buckets[bucket] = {"id": bucket, "name": bucket, "public": False, "file_size_limit": limit,
                                "allowed_mime_types": mimes}

    def object_file(self, bucket: str, path: str) -> Path:
        return self.root / "objects" / bucket / path

    def put_object(self, bucket: str, path: str, data: bytes | Path) -> None:
        target = self.object_file(bucket, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, target)
        else:
            target.write_bytes(data)
        self.user_metadata.pop((bucket, path), None)

    def delete_objects(self, bucket: str, names: list[str]) -> None:
        """DELETE /object/{bucket} {"prefixes": names}: the real server takes them as whole names; missing ones
        are ignored. Then on_delete, as the real server deletes the storage.objects rows too."""
        for name in names:
            self.object_file(bucket, name).unlink(missing_ok=True)
            self.user_metadata.pop((bucket, name), None)
        if self.on_delete is not None:
            self.on_delete(bucket, names)

    def count(self, n: int) -> None:
        with self.lock:
            self.bytes_received += n

    def take(self, name: str) -> Any:
        """Consume one entry of a fault list (or one count of a counter); None when off."""
        with self.lock:
            value = getattr(self.faults, name)
            if isinstance(value, list):
                return value.pop(0) if value else None
            if value:
                setattr(self.faults, name, value - 1)
                return True
            return None

    def fault_headers(self) -> dict[str, str]:
        """Headers that every answer carries while a fault asks for them."""
        return {"Connection": "close"} if self.faults.close_after_answer else {}

    def stall_before_body(self, length: int) -> None:
        """Wait before reading a request body of `length` bytes, if stall_body_seconds says so."""
        stall = self.take("stall_body_seconds") if length else None
        if stall:
            self.stop_event.wait(stall)

    def arm_patch_faults(self) -> None:
        """Count a PATCH and switch on the faults planned for it."""
        with self.lock:
            self.patches += 1
            planned = self.faults.on_patch.pop(self.patches, {})
        for name, value in planned.items():
            setattr(self.faults, name, value)

    def requests(self, method: str, route: str = "") -> list[tuple[str, str, int, str]]:
        """Logged requests with this method whose path contains route."""
        return [entry for entry in self.log if entry[0] == method and route in entry[1]]

    def refusal(self, bucket: str, size: int | None, mime: str) -> int | None:
        """413/415/404 if the bucket would refuse this object, else None."""
        rules = self.buckets.get(bucket)
        if rules is None:
            return 404
        if size is not None and rules["file_size_limit"] is not None and size > rules["file_size_limit"]:
            return 413
        if rules["allowed_mime_types"] and mime not in rules["allowed_mime_types"]:
            return 415
        return None


def _handler_for(server: StorageServer) -> type[BaseHTTPRequestHandler]:
    from tests.storage_server_routes import StorageHandler

    return type("BoundStorageHandler", (UserMetadataRoutes, StorageHandler), {"server_state": server})


class UserMetadataRoutes:
    """Mixed in before the routes: objects keep the user metadata their upload carried (`x-metadata`, the
    multipart `metadata` field, or TUS `metadata`) and object info returns it; requests are counted in flight."""

    server_state: StorageServer
    command: str
    path: str
    headers: Any
    rfile: Any
    wfile: Any
    counted = False

    def setup(self) -> None:
        super().setup()  # type: ignore[misc]
        self.rfile = PacedReader(self.rfile, self.server_state.uplink)
        self.wfile = PacedWriter(self.wfile, self.server_state.downlink)
        if self.server_state.round_trip_s:
            self.wfile = DelayedWriter(self.wfile, lambda: self.server_state.round_trip_s, self.server_state.stop_event)

    def dispatch(self) -> None:
        state = self.server_state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self.counted = True
        try:
            delay = state.request_delay_s + state.faults.request_delay_seconds
            if delay:
                state.stop_event.wait(delay)
            multipart.metadata = multipart.cache_control = None
            super().dispatch()  # type: ignore[misc]
        finally:
            self.answered()

    def answered(self) -> None:
        """The request is no longer in flight once it is answered."""
        if self.counted:
            self.counted = False
            with self.server_state.lock:
                self.server_state.in_flight -= 1

    do_GET = do_POST = do_PUT = do_PATCH = do_HEAD = do_DELETE = dispatch

    def answer(self, status: int, body: bytes = b"", content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
        self.keep_metadata(status, headers or {})
        self.answered()  # before the answer goes out: the client may send its next request at once
        super().answer(status, body, content_type, headers)  # type: ignore[misc]

    def keep_metadata(self, status: int, headers: dict[str, str]) -> None:
        state = self.server_state
        route, bucket, path = split_path(self.path)
        if route == "object" and self.command in ("POST", "PUT") and status == 200:
            raw = self.headers.get("x-metadata")
            found = json.loads(base64.b64decode(raw)) if raw else multipart.metadata
            state.user_metadata[(bucket, path)] = found
            state.cache_control.object_uploaded(bucket, path, self.headers.get("cache-control"), multipart.cache_control)
        elif route == "upload/resumable" and status == 201:
            upload_id, meta = headers["Location"].rsplit("/", 1)[1], parse_metadata(self.headers.get("Upload-Metadata", ""))
            state.upload_user_metadata[upload_id] = json.loads(meta["metadata"]) if meta.get("metadata") else None
            state.cache_control.upload_created(upload_id, meta.get("cacheControl"))
        elif route == "upload/resumable" and headers.get("Tus-Complete") and bucket in state.uploads:
            upload = state.uploads[bucket]
            state.user_metadata[(upload.bucket, upload.path)] = state.upload_user_metadata.pop(bucket, None)

    def get_object_info(self, bucket: str, path: str) -> None:
        source = self.server_state.object_file(bucket, path)
        if not source.is_file():
            return self.rest_fail(404)  # type: ignore[attr-defined, no-any-return]
        info = {"name": path, "size": source.stat().st_size,
                "metadata": self.server_state.user_metadata.get((bucket, path))}
        return self.answer(200, encode(info))


def split_path(url_path: str) -> tuple[str, str, str]:
    """'/storage/v1/object/authenticated/b/p/q' -> ('object/authenticated', 'b', 'p/q')."""
    path = unquote(urlsplit(url_path).path)
    if not path.startswith(PREFIX + "/"):
        return "", "", ""
    parts = path[len(PREFIX) + 1:].split("/")
    route = parts.pop(0)
    if route == "object" and parts and parts[0] in ("authenticated", "info", "sign", "public"):
        route += "/" + parts.pop(0)
    if route == "upload" and parts and parts[0] == "resumable":
        route += "/" + parts.pop(0)
    return route, parts[0] if parts else "", "/".join(parts[1:])


def new_upload_id() -> str:
    return uuid.uuid4().hex


def drop(conn: socket.socket) -> None:
    """Cut the connection without an answer, as a crashed proxy would."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
