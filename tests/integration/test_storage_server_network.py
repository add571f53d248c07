"""The Storage test server's network model (a delay per request, a shared bandwidth cap) over real sockets.

Only lower bounds are checked: a modelled network may never be faster than asked, and a
slow machine can only make it slower.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.storage_server import StorageServer

KEY = "service-key"
KiB = 1024


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY, request_delay_s=0.3).start()
    srv.add_bucket("b")
    yield srv
    srv.close()


def put(server: StorageServer, name: str, body: bytes) -> float:
    """Upload body with one raw POST; return the seconds it took."""
    started = time.monotonic()
    requests.post(f"{server.url}/storage/v1/object/b/{name}", data=body, timeout=30, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "video/mp4"}).raise_for_status()
    return time.monotonic() - started


def test_every_request_waits_the_delay_given_at_construction_and_changed_at_run_time(server: StorageServer) -> None:
    assert put(server, "a", b"x") >= 0.3
    server.request_delay_s = 0.6
    assert put(server, "b", b"x") >= 0.6
    server.request_delay_s = 0.0
    assert server.requests("POST", "/object/b/") and len(server.requests("POST")) == 2


def test_bodies_both_ways_cross_the_link_no_faster_than_its_cap(server: StorageServer) -> None:
    server.request_delay_s, server.bandwidth_bytes_per_s = 0.0, 512 * KiB
    assert put(server, "up", b"u" * 256 * KiB) >= 0.5
    started = time.monotonic()
    resp = requests.get(f"{server.url}/storage/v1/object/authenticated/b/up", timeout=30,
                        headers={"Authorization": f"Bearer {KEY}"})
    assert resp.content == b"u" * 256 * KiB
    assert time.monotonic() - started >= 0.5


def test_concurrent_uploads_share_one_link(server: StorageServer) -> None:
    server.request_delay_s, server.bandwidth_bytes_per_s = 0.0, 512 * KiB
    started = time.monotonic()
    threads = [threading.Thread(target=put, args=(server, f"c{n}", b"c" * 128 * KiB)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 1.0  # 512 KiB in all, not 128 KiB four times side by side
    assert all(server.object_file("b", f"c{n}").stat().st_size == 128 * KiB for n in range(4))
