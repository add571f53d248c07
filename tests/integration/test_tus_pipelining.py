"""TUS PATCHes pipelined (HTTP/1.1) against the local Storage server over real sockets.

The server notes, before each PATCH answer, whether the client had already sent its next request;
a fault makes it refuse such requests as a server that takes them concurrently would (409).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_supabase_storage import random_file
from tests.storage_server import StorageServer
from tests.support.media import sha256
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

MiB = 1024 * 1024
KEY = "service-key"


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY, round_trip_s=0.02).start()  # answers arrive a round trip late
    srv.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4"])
    srv.faults.watch_pipelining = True
    yield srv
    srv.close()


@pytest.fixture
def opened() -> Iterator[list[SupabaseStorage]]:
    made: list[SupabaseStorage] = []
    yield made
    for storage in made:
        storage.close()


def storage_for(server: StorageServer, opened: list[SupabaseStorage], pipelining: bool = True) -> SupabaseStorage:
    opened.append(SupabaseStorage(storage_urls(server.url), KEY, TransferLimits(600, 3, MiB, 0, pipelining)))
    return opened[-1]


def test_each_patch_is_sent_before_the_answer_to_the_one_before(
        server: StorageServer, opened: list[SupabaseStorage], tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 4 * MiB + 7)
    storage = storage_for(server, opened)
    stored = storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert stored.sha256 == sha256(source) == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert server.pipelined == [True, True, True, True, False], "every PATCH but the last had the next behind it"
    assert not server.requests("HEAD") and server.bytes_received == source.stat().st_size
    storage.upload_file("media-outputs", "u/j/w.mp4", source, "video/mp4")
    assert server.pipelined[5:] == [True, True, True, True, False], "the connection is kept for the next file"


def test_with_pipelining_off_each_patch_waits_for_its_answer(
        server: StorageServer, opened: list[SupabaseStorage], tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 3 * MiB)
    storage_for(server, opened, pipelining=False).upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)
    assert server.pipelined == [False, False, False]


def test_a_server_that_refuses_pipelined_patches_gets_one_at_a_time_from_then_on(
        server: StorageServer, opened: list[SupabaseStorage], tmp_path: Path) -> None:
    server.faults.refuse_pipelined = True
    source = random_file(tmp_path / "v.mp4", 4 * MiB)
    storage = storage_for(server, opened)
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)
    refused = len([entry for entry in server.requests("PATCH") if entry[2] == 409])
    assert 1 <= refused <= 3, "the requests in flight when the pipeline broke"
    answered_before = len(server.pipelined)
    storage.upload_file("media-outputs", "u/j/w.mp4", source, "video/mp4")
    assert sha256(server.object_file("media-outputs", "u/j/w.mp4")) == sha256(source)
    assert server.pipelined[answered_before:] == [False] * 4, "no more pipelining on this backend"
    assert len([entry for entry in server.requests("PATCH") if entry[2] == 409]) == refused


@pytest.mark.parametrize("trusted", ["file", "folder"])  # REQUESTS_CA_BUNDLE may name either
def test_pipelined_patches_go_over_tls_as_to_hosted_supabase(
        opened: list[SupabaseStorage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: str) -> None:
    cert, key, folder = tmp_path / "ca" / "cert.pem", tmp_path / "key.pem", tmp_path / "ca"
    folder.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    # Trusted by requests and by the pipeline alike.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert if trusted == "file" else folder))
    server = StorageServer(KEY, tls=(cert, key)).start()
    try:
        server.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4"])
        server.faults.watch_pipelining = True
        source = random_file(tmp_path / "v.mp4", 4 * MiB + 7)
        stored = storage_for(server, opened).upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
        assert server.url.startswith("https://")
        assert stored.sha256 == sha256(source) == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
        assert True in server.pipelined and not server.requests("HEAD")
    finally:
        server.close()


def test_an_answer_that_kept_less_of_a_chunk_is_continued_from_the_servers_offset(
        server: StorageServer, opened: list[SupabaseStorage], tmp_path: Path) -> None:
    server.faults.on_patch = {2: {"keep_short": [1000]}}
    source = random_file(tmp_path / "v.mp4", 5 * MiB)
    opened.append(SupabaseStorage(storage_urls(server.url), KEY, TransferLimits(600, 0, MiB, 0)))  # no retries
    stored = opened[-1].upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert stored.sha256 == sha256(source) == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert [offset for _, _, _, offset in server.requests("HEAD")] == [str(2 * MiB - 1000)]


def test_a_refused_pipeline_costs_no_retry(server: StorageServer, opened: list[SupabaseStorage],
                                           tmp_path: Path) -> None:
    server.faults.refuse_pipelined = True
    source = random_file(tmp_path / "v.mp4", 4 * MiB)
    opened.append(SupabaseStorage(storage_urls(server.url), KEY, TransferLimits(600, 0, MiB, 0)))  # no retries
    opened[-1].upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)
    assert not opened[-1].uploader.pipelining
