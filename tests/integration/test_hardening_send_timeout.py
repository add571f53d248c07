"""A request body is sent under the transfer's read timeout, not the connect timeout (issue 14 §6).

The local Storage server stalls before reading the body of an upload that arrives on a new
connection, for longer than the connect timeout and less than the read timeout. The body is larger
than the sockets' buffers, so the client really waits in send. Timeouts are small so the test is short.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.storage_server import StorageServer
from tests.support.media import sha256
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

CONNECT_SECONDS, STALL_SECONDS, READ_SECONDS = 0.5, 1.5, 5.0
BODY_BYTES = 12 * 1024 * 1024  # well past what loopback sockets buffer while nobody reads


class QuickTimeouts(TransferLimits):
    """UPLOAD_TIMEOUT_SECONDS derives connect and read timeouts of at least 1 s; these are smaller."""

    @property
    def timeouts(self) -> tuple[float, float]:
        return CONNECT_SECONDS, READ_SECONDS


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer("key").start()
    srv.add_bucket("media-outputs")
    yield srv
    srv.close()


@pytest.mark.parametrize(("route", "connection"), [("tus", "new"), ("streamed", "new"), ("tus", "kept alive"),
                                                   ("storage3", "new")])
def test_an_upload_body_stalled_past_the_connect_timeout_still_succeeds(server: StorageServer, tmp_path: Path,
                                                                        route: str, connection: str) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(BODY_BYTES))
    server.faults.no_tus = route == "streamed"
    server.faults.close_after_answer = connection == "new"
    server.faults.stall_body_seconds = [STALL_SECONDS]
    # No retries: a send cut off by the connect timeout would fail the upload instead of being resent.
    threshold = 2 * BODY_BYTES if route == "storage3" else 1024 * 1024  # below it, storage3 (httpx) sends the file
    storage = SupabaseStorage(storage_urls(server.url), "key", QuickTimeouts(60, 0, BODY_BYTES, threshold))
    try:
        stored = storage.upload_file("media-outputs", "u/job/video.mp4", source, "video/mp4")
    finally:
        storage.close()
    assert stored.size == BODY_BYTES and stored.sha256 == sha256(source)
    assert sha256(server.object_file("media-outputs", "u/job/video.mp4")) == stored.sha256
    assert server.faults.stall_body_seconds == []  # the stall did happen
    sent = server.requests("PATCH") if route == "tus" else server.requests("POST", "/object/media-outputs")
    assert len(sent) == 1 and not server.requests("HEAD")
