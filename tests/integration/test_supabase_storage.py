"""SupabaseStorage against a local Storage API server over real sockets, with faults switched on."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.storage_server import StorageServer
from tests.support.media import sha256
from tests.support.workers import ROOT
from utils.storage import StorageError, UploadRecord
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

MiB = 1024 * 1024
KEY = "service-key"


@pytest.fixture
def server() -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-uploads")
    srv.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4", "image/jpeg"])
    yield srv
    srv.close()


_opened: list[SupabaseStorage] = []


@pytest.fixture(autouse=True)
def _close_storages() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def storage_for(server: StorageServer, *, timeout: float = 600, chunk: int = 6 * MiB, threshold: int = 6 * MiB,
                retries: int = 3, key: str = KEY) -> SupabaseStorage:
    storage = SupabaseStorage(storage_urls(server.url), key, TransferLimits(timeout, retries, chunk, threshold))
    _opened.append(storage)
    return storage


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    """Incompressible bytes, written in blocks so nothing large sits in memory."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(4 * MiB, left)
            f.write(rng.randbytes(n))
            left -= n
    return path


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = random_file(tmp_path_factory.mktemp("big") / "300mb.mp4", 300 * MiB)
    yield path
    path.unlink()


@pytest.mark.slow
def test_300mb_upload_with_faults_at_random_chunks_is_byte_identical_and_resends_little(
        server: StorageServer, big_file: Path) -> None:
    rng = random.Random(4)
    chunks = big_file.stat().st_size // (6 * MiB)
    picked = rng.sample(range(2, chunks - 2), 6)
    plans = [{"drop_patch_after": [rng.randrange(1, 6 * MiB)]}, {"drop_patch_after": [rng.randrange(1, 6 * MiB)]},
             {"fail_statuses": [503]}, {"fail_statuses": [500]}, {"fail_statuses": [409]},
             {"fail_statuses": [429]}]
    server.faults.on_patch = dict(zip(picked, plans, strict=True))
    stored = storage_for(server).upload_file("media-outputs", "u/j/video.mp4", big_file, "video/mp4")
    assert stored.sha256 == sha256(big_file) == sha256(server.object_file("media-outputs", "u/j/video.mp4"))
    assert stored.size == big_file.stat().st_size
    assert not server.faults.on_patch, "every planned fault fired"
    assert len(server.requests("POST", "/upload/resumable")) == 1
    assert server.bytes_received <= stored.size + 2 * 6 * MiB * len(plans)
    assert any(int(offset) % (6 * MiB) for _, _, _, offset in server.requests("HEAD")), "resumed mid-chunk"
    assert server.without_length == 0


def test_small_files_go_through_storage3_with_content_type_and_upsert(server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "poster.jpg", 100_000)
    storage = storage_for(server)
    storage.bucket_rules("media-outputs")
    server.faults.fail_statuses = [503]  # retried
    for _ in range(2):  # the second time overwrites
        stored = storage.upload_file("media-outputs", "u/j/poster.jpg", source, "image/jpeg")
    assert stored.sha256 == sha256(server.object_file("media-outputs", "u/j/poster.jpg"))
    assert [status for _, _, status, _ in server.requests("POST", "/object/media-outputs/")] == [503, 200, 200]
    assert not server.requests("POST", "/upload/resumable")
    assert server.without_length == 0


@pytest.mark.parametrize("size", [100_000, 3 * MiB], ids=["single request", "tus"])
def test_an_upload_sends_no_request_beyond_the_upload_itself(server: StorageServer, tmp_path: Path,
                                                             size: int) -> None:
    """Each request costs a round trip per file (hundreds per HLS job): the answer to the upload
    itself says the object is stored, so nothing asks again."""
    source = random_file(tmp_path / "v.mp4", size)
    storage = storage_for(server, chunk=MiB, threshold=MiB)
    storage.bucket_rules("media-outputs")
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    # The server logs each request as it answers it.
    methods = [method for method, path, _, _ in server.log if "/bucket/" not in path]
    assert methods == (["POST"] if size < MiB else ["POST", "PATCH", "PATCH", "PATCH"])
    assert server.object_file("media-outputs", "u/j/v.mp4").stat().st_size == size


def test_a_stalled_answer_times_out_and_the_upload_continues_from_the_servers_offset(
        server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 3 * MiB + 5)
    server.faults.on_patch = {2: {"stall_patches": 1}}
    stored = storage_for(server, timeout=20, chunk=MiB, threshold=0).upload_file(
        "media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert stored.sha256 == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert server.bytes_received == source.stat().st_size, "the stalled chunk was not sent twice"
    assert [offset for _, _, _, offset in server.requests("HEAD")] == [str(2 * MiB)]


def test_a_forgotten_upload_starts_over_with_a_new_one(server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 3 * MiB)
    server.faults.on_patch = {2: {"forget_uploads": 1}}
    stored = storage_for(server, chunk=MiB, threshold=0).upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert stored.sha256 == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert len(server.requests("POST", "/upload/resumable")) == 2
    assert not server.requests("HEAD"), "a vanished upload is not retried in place"


def test_without_a_tus_endpoint_one_streamed_request_is_sent(server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 2 * MiB)
    server.faults.no_tus = True
    stored = storage_for(server, threshold=0).upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert stored.sha256 == sha256(server.object_file("media-outputs", "u/j/v.mp4"))
    assert len(server.requests("POST", "/object/media-outputs/")) == 1
    assert server.without_length == 0


def test_an_upload_journal_resumes_the_same_file_and_ignores_a_different_one(
        server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "v.mp4", 3 * MiB)
    storage = storage_for(server, chunk=MiB, threshold=0)
    journal = MemoryJournal()
    server.faults.on_patch = {2: {"fail_statuses": [503]}}
    with pytest.raises(StorageError):
        storage_for(server, chunk=MiB, threshold=0, retries=0).upload_file(
            "media-outputs", "u/j/v.mp4", source, "video/mp4", journal=journal)
    assert journal.saved and server.bytes_received <= 3 * MiB  # one chunk, the refused one, one pipelined
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4", journal=journal)
    assert len(server.requests("POST", "/upload/resumable")) == 1, "resumed, not restarted"
    # The refused chunk, and the one pipelined behind it, were sent twice; the first one only once.
    assert server.bytes_received <= source.stat().st_size + 2 * MiB
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)
    finished = journal.saved[("media-outputs", "u/j/v.mp4")]
    assert (finished.size, finished.sha256, finished.stored) == (3 * MiB, sha256(source), True)
    journal.saved[("media-outputs", "u/j/w.mp4")] = UploadRecord(server.url + "/nowhere", 3 * MiB, "0" * 64)
    storage.upload_file("media-outputs", "u/j/w.mp4", source, "video/mp4", journal=journal)
    assert len(server.requests("POST", "/upload/resumable")) == 2, "a record for other bytes is not used"
    server.delete_objects("media-outputs", ["u/j/v.mp4"])
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4", journal=journal)
    assert len(server.requests("POST", "/upload/resumable")) == 3, "a finished upload is never resumed"
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)


def test_a_journalled_upload_that_had_finished_is_sent_again_not_trusted(
        server: StorageServer, tmp_path: Path) -> None:
    """A worker that died between the last PATCH and marking the record stored left it resumable;
    the object may have been replaced since (here by a smaller file, sent in one request)."""
    source = random_file(tmp_path / "v.mp4", 3 * MiB)
    storage, journal = storage_for(server, chunk=MiB, threshold=0, retries=0), MemoryJournal()
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4", journal=journal)
    finished = journal.saved[("media-outputs", "u/j/v.mp4")]
    journal.saved[("media-outputs", "u/j/v.mp4")] = UploadRecord(finished.url, finished.size, finished.sha256)
    server.put_object("media-outputs", "u/j/v.mp4", b"x" * MiB)
    storage.upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4", journal=journal)
    assert len(server.requests("POST", "/upload/resumable")) == 2, "a new upload, not the finished one"
    assert sha256(server.object_file("media-outputs", "u/j/v.mp4")) == sha256(source)


class MemoryJournal:
    def __init__(self) -> None:
        self.saved: dict[tuple[str, str], UploadRecord] = {}

    def load(self, bucket: str, path: str) -> UploadRecord | None:
        return self.saved.get((bucket, path))

    def save(self, bucket: str, path: str, record: UploadRecord) -> None:
        self.saved[(bucket, path)] = record

    def clear(self, bucket: str, path: str) -> None:
        self.saved.pop((bucket, path), None)


@pytest.mark.parametrize(("limit", "mimes", "expected"), [
    (MiB, None, "file_size_limit"), (None, ["image/jpeg"], "allowed_mime_types")])
def test_a_doomed_upload_is_refused_before_a_byte_is_sent(server: StorageServer, tmp_path: Path, limit: int | None,
                                                         mimes: list[str] | None, expected: str) -> None:
    server.add_bucket("media-outputs", limit, mimes)
    source = random_file(tmp_path / "v.mp4", 2 * MiB)
    with pytest.raises(StorageError) as caught:
        storage_for(server, threshold=0).upload_file("media-outputs", "u/j/v.mp4", source, "video/mp4")
    assert caught.value.permanent and expected in str(caught.value)
    assert server.bytes_received == 0


@pytest.mark.parametrize("threshold", [0, 6 * MiB])
def test_the_servers_own_refusal_is_permanent_and_says_what_to_change(
        server: StorageServer, tmp_path: Path, threshold: int) -> None:
    storage = storage_for(server, threshold=threshold)
    storage.bucket_rules("media-outputs")
    server.add_bucket("media-outputs", MiB, None)  # changed after our preflight read it
    with pytest.raises(StorageError) as caught:
        storage.upload_file("media-outputs", "u/j/v.mp4", random_file(tmp_path / "v.mp4", 2 * MiB), "video/mp4")
    assert caught.value.permanent and caught.value.status == 413
    assert "file_size_limit" in str(caught.value) and "2.0 MB" in str(caught.value)


def test_a_wrong_key_is_permanent_and_names_the_variable(server: StorageServer, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        storage_for(server, key="anon").upload_file("media-outputs", "u/j/v.mp4",
                                                    random_file(tmp_path / "v.mp4", 10), "video/mp4")
    assert caught.value.permanent and "SUPABASE_SERVICE_ROLE_KEY" in str(caught.value)


def test_a_download_resumes_after_a_dropped_connection(server: StorageServer, tmp_path: Path) -> None:
    source = random_file(tmp_path / "in.mp4", 5 * MiB + 3)
    server.put_object("media-uploads", "u/in.mp4", source)
    server.faults.drop_download_after = [3 * MiB + 17]
    size = storage_for(server).download_file("media-uploads", "u/in.mp4", tmp_path / "got", 10 * MiB)
    assert size == source.stat().st_size and sha256(tmp_path / "got") == sha256(source)
    assert [status for _, _, status, _ in server.requests("GET", "/object/authenticated/")] == [200, 206]


def test_a_download_over_the_input_limit_is_refused_before_writing(server: StorageServer, tmp_path: Path) -> None:
    server.put_object("media-uploads", "u/in.mp4", b"x" * (2 * MiB))
    with pytest.raises(StorageError) as caught:
        storage_for(server).download_file("media-uploads", "u/in.mp4", tmp_path / "got", MiB)
    assert caught.value.permanent and "INPUT_MAX_SIZE_MB" in str(caught.value)
    assert (tmp_path / "got").stat().st_size == 0


def test_signed_urls_are_absolute_and_readable_without_credentials(server: StorageServer) -> None:
    server.put_object("media-outputs", "u/j/v.mp4", b"video bytes")
    url = storage_for(server).signed_url("media-outputs", "u/j/v.mp4", 60)
    assert url.startswith(server.url + "/storage/v1/object/sign/media-outputs/u/j/v.mp4?token=")
    assert requests.get(url, timeout=5).content == b"video bytes"


def test_info_and_delete(server: StorageServer) -> None:
    server.put_object("media-outputs", "u/j/v.mp4", b"12345")
    storage = storage_for(server)
    found = storage.object_digest("media-outputs", "u/j/v.mp4")
    assert found is not None and found.size == 5
    storage.delete("media-outputs", ["u/j/v.mp4", "u/j/missing.mp4"])
    assert storage.object_digest("media-outputs", "u/j/v.mp4") is None


RSS_PROBE = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from utils.supabase.transfer import TransferLimits
    from utils.supabase.storage import SupabaseStorage
    from utils.supabase.tus import storage_urls
    storage = SupabaseStorage(storage_urls(sys.argv[1]), "service-key", TransferLimits(600, 3, 6 << 20, 6 << 20))
    storage.bucket_rules("media-outputs")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    storage.upload_file("media-outputs", "u/j/big.mp4", Path(sys.argv[2]), "video/mp4")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
""")


@pytest.mark.slow
def test_uploading_1gb_keeps_memory_flat(server: StorageServer, tmp_path: Path) -> None:
    source = tmp_path / "1gb.mp4"
    with open(source, "wb") as f:  # sparse, with random blocks so it is not all zeros
        for at in range(0, 1024 * MiB, 64 * MiB):
            f.seek(at)
            f.write(os.urandom(MiB))
        f.truncate(1024 * MiB)
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, server.url, str(source)], cwd=ROOT, env={
        **os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    grown_kib = int(proc.stdout.strip().splitlines()[-1])
    assert grown_kib < 64 * 1024, f"peak RSS grew by {grown_kib} KiB"
    assert server.object_file("media-outputs", "u/j/big.mp4").stat().st_size == 1024 * MiB
