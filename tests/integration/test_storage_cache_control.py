"""An upload's cache_control reaches the stored object on every upload path, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.storage_server import StorageServer
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

KEY = "service-key"
MiB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-outputs")
    yield srv
    srv.close()


def served_cache_control(server: StorageServer, path: str) -> str:
    resp = requests.get(f"{server.url}/storage/v1/object/authenticated/media-outputs/{path}",
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    resp.raise_for_status()
    return resp.headers["Cache-Control"]


# threshold 0 sends every file resumably; no_tus then falls back to one raw request.
@pytest.mark.parametrize(("threshold", "no_tus"), [(MiB, False), (0, False), (0, True)],
                         ids=["standard", "tus", "streamed"])
def test_cache_control_is_served_as_asked_and_an_hour_by_default(
        server: StorageServer, tmp_path: Path, threshold: int, no_tus: bool) -> None:
    server.faults.no_tus = no_tus
    source = tmp_path / "index.m3u8"
    source.write_bytes(b"#EXTM3U\n")
    storage = SupabaseStorage(storage_urls(server.url), KEY, TransferLimits(60, 1, MiB, threshold))
    try:
        storage.upload_file("media-outputs", "u/j/live.m3u8", source, "video/mp4", cache_control="1")
        storage.upload_file("media-outputs", "u/j/final.m3u8", source, "video/mp4")
    finally:
        storage.close()
    assert served_cache_control(server, "u/j/live.m3u8") == "max-age=1"
    assert served_cache_control(server, "u/j/final.m3u8") == "max-age=3600"
