"""A TUS PATCH cut mid-body, as the real server and a gateway in front of it answer it, over real sockets.

The real server keeps the bytes of a broken-off PATCH and answers a HEAD on that upload only once the
dead request's lock drains (about 3 s); a proxy in front turns an upstream reset into a 502 with an
HTML body. The client must retry both and resume from the server's offset, not the chunk boundary.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.test_supabase_storage import random_file
from tests.storage_server import StorageServer
from tests.support.media import sha256
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

MiB = 1024 * 1024
KEY = "service-key"
SIZE = 5 * MiB + 5
CUT = MiB + 12_345  # odd, so that a resume from the chunk boundary would corrupt or conflict


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()  # the real server's 3 s lock drain
    srv.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4"])
    yield srv
    srv.close()


def upload_with_a_cut(server: StorageServer, tmp_path: Path) -> list[tuple[str, str, int, str]]:
    """Upload SIZE bytes in 2 MiB chunks with PATCH 2 cut at CUT bytes, retried once; return the TUS requests."""
    source = random_file(tmp_path / "v.mp4", SIZE)
    server.faults.on_patch = {2: {"drop_patch_after": [CUT]}}
    retries: list[int] = []
    # UPLOAD_TIMEOUT_SECONDS=10 gives a 1 s read timeout: shorter than the server's lock drain.
    storage = SupabaseStorage(storage_urls(server.url), KEY, TransferLimits(10, 3, 2 * MiB, 0),
                              on_retry=lambda: retries.append(1))
    try:
        stored = storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    finally:
        storage.close()
    assert stored.sha256 == sha256(source) == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert len(retries) == 1, "the HEAD after the cut waited for the lock drain instead of timing out"
    return [entry for entry in server.log if "/upload/resumable/" in entry[1]]


def test_a_cut_patch_is_resumed_from_the_servers_odd_offset_with_one_head_that_waits_for_the_drain(
        server: StorageServer, tmp_path: Path) -> None:
    tus = upload_with_a_cut(server, tmp_path)
    offset = str(2 * MiB + CUT)
    assert [(method, status, sent) for method, _, status, sent in tus] == [
        ("PATCH", 204, str(2 * MiB)), ("HEAD", 200, offset), ("PATCH", 204, str(SIZE))]
    assert server.bytes_received == SIZE, "no byte was sent twice"


def test_a_gateways_502_with_html_is_retried_from_the_servers_offset(server: StorageServer, tmp_path: Path) -> None:
    server.faults.gateway = True
    tus = upload_with_a_cut(server, tmp_path)
    assert [(method, status) for method, _, status, _ in tus] == [
        ("PATCH", 204), ("PATCH", 502), ("HEAD", 200), ("PATCH", 204)]
    assert tus[2][3] == str(2 * MiB + CUT)


def test_a_head_after_the_client_broke_off_a_patch_waits_for_the_drain_and_reports_the_bytes_that_came(
        server: StorageServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}", "Tus-Resumable": "1.0.0"}
    created = requests.post(f"{server.url}/storage/v1/upload/resumable", timeout=10, headers={
        **auth, "Upload-Length": str(MiB), "Upload-Metadata": "bucketName bWVkaWEtb3V0cHV0cw==,objectName dS92Lm1wNA==,"
        "contentType dmlkZW8vbXA0"})
    location = created.headers["Location"]
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as conn:
        head = (f"PATCH {location.split(server.url, 1)[1]} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
                f"Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Length: {MiB}\r\n"
                "Content-Type: application/offset+octet-stream\r\n\r\n")
        conn.sendall(head.encode() + b"p" * 1001)
    upload = server.uploads[location.rsplit("/", 1)[1]]
    while not upload.drained_at:  # the server has seen the connection end
        time.sleep(0.01)
    answer = requests.head(location, headers=auth, timeout=10)
    assert time.monotonic() >= upload.drained_at, "the HEAD waited for the lock to drain"
    assert answer.headers["Upload-Offset"] == "1001"
