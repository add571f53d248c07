"""Transfer pieces that make no request: file slices, the background hash, deferred journaling."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from utils.storage import StorageError, UploadRecord
from utils.supabase.transfer import BackgroundSha256, FileSlice, Transfer
from utils.supabase.tus import Deadline


def test_a_file_slice_reads_exactly_its_bytes_in_blocks() -> None:
    body = FileSlice(io.BytesIO(bytes(range(256)) * 4), 10, 300)
    assert len(body) == 300
    got = b"".join(iter(lambda: body.read(64), b""))
    assert got == (bytes(range(256)) * 4)[10:310]
    assert body.read() == b""


def test_the_background_hash_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1_000_000)
    assert BackgroundSha256(path).result() == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_an_unreadable_file_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        BackgroundSha256(tmp_path / "missing").result()
    assert caught.value.permanent


class Journal:
    def __init__(self) -> None:
        self.saved: list[UploadRecord] = []

    def load(self, bucket: str, path: str) -> UploadRecord | None:
        return None

    def save(self, bucket: str, path: str, record: UploadRecord) -> None:
        self.saved.append(record)

    def clear(self, bucket: str, path: str) -> None:
        pass


def test_the_upload_url_is_journaled_once_with_the_files_hash_then_marked_stored(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    journal = Journal()
    t = Transfer("b", "p", path, "video/mp4", 10, BackgroundSha256(path), Deadline(60), journal=journal)
    t.use_upload("http://s/upload/1", recorded=False)
    t.record_upload(wait=True)
    t.record_upload()
    t.record_stored()
    sha = hashlib.sha256(b"x" * 10).hexdigest()
    assert journal.saved == [UploadRecord("http://s/upload/1", 10, sha), UploadRecord("http://s/upload/1", 10, sha, True)]


def test_the_create_request_does_not_wait_for_the_hash(tmp_path: Path) -> None:
    t = Transfer("b", "p", tmp_path / "f", "video/mp4", 10, BackgroundSha256(tmp_path / "f"), Deadline(60))
    assert "sha256" not in str(t.tus_headers()) and "metadata " not in t.tus_headers()["Upload-Metadata"]
