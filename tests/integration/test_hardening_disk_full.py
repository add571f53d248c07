"""A download onto a full disk fails with what to do and how much is needed, from both backends (issue 14 §6).

The full disk is /dev/full (every write fails with ENOSPC, no root needed) and a file size limit is
RLIMIT_FSIZE in a child process (EFBIG); the real disk is never filled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_hardening_local_storage import run_one_job
from tests.storage_server import StorageServer
from tests.support.workers import ROOT
from utils.storage import LocalStorage, StorageError
from utils.supabase.storage import SupabaseStorage
from utils.supabase.transfer import TransferLimits
from utils.supabase.tus import storage_urls

FULL_DISK = Path("/dev/full")
SIZE = 3 * 1024 * 1024 + 5
needs_dev_full = pytest.mark.skipif(not FULL_DISK.exists(), reason="no /dev/full on this system")


def local_storage_with_input(tmp_path: Path) -> LocalStorage:
    source = tmp_path / "storage" / "media-uploads" / "u" / "clip.mp4"
    source.parent.mkdir(parents=True)
    source.write_bytes(os.urandom(SIZE))
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def supabase_storage(tmp_path: Path) -> Iterator[SupabaseStorage]:
    server = StorageServer("key").start()
    server.put_object("media-uploads", "u/clip.mp4", os.urandom(SIZE))
    storage = SupabaseStorage(storage_urls(server.url), "key", TransferLimits(60, 1, 6 << 20, 6 << 20))
    yield storage
    storage.close()
    server.close()


def assert_explains_full_disk(exc: StorageError) -> None:
    message = str(exc)
    assert "media-uploads/u/clip.mp4" in message
    assert "the disk of WORKER_TEMP_DIR is full" in message
    assert "free space under WORKER_TEMP_DIR" in message
    assert f"{SIZE:,} bytes" in message  # how much was needed
    assert not exc.permanent  # the disk may be freed before the next attempt
    assert isinstance(exc.__cause__, OSError)


@needs_dev_full
def test_local_download_onto_a_full_disk_says_to_free_space_and_how_much(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        local_storage_with_input(tmp_path).download_file("media-uploads", "u/clip.mp4", FULL_DISK, 1 << 30)
    assert_explains_full_disk(info.value)


@needs_dev_full
def test_supabase_download_onto_a_full_disk_says_to_free_space_and_how_much(supabase_storage: SupabaseStorage) -> None:
    with pytest.raises(StorageError) as info:
        supabase_storage.download_file("media-uploads", "u/clip.mp4", FULL_DISK, 1 << 30)
    assert_explains_full_disk(info.value)


CHILD = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from utils.storage import LocalStorage, StorageError
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        LocalStorage(Path(sys.argv[1])).download_file("media-uploads", "u/clip.mp4", Path(sys.argv[2]), 1 << 30)
    except StorageError as exc:
        print("permanent" if exc.permanent else "transient", exc)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_download_past_the_file_size_limit_says_which_limit(tmp_path: Path) -> None:
    local_storage_with_input(tmp_path)
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "storage"), str(tmp_path / "input")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert child.stdout.startswith("transient input object media-uploads/u/clip.mp4"), child.stdout + child.stderr
    assert "larger than this system lets one file grow" in child.stdout and "ulimit -f" in child.stdout
    assert f"{SIZE:,} bytes" in child.stdout


@pytest.fixture
def small_temp_dir(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs to serve as WORKER_TEMP_DIR, where this machine lets us mount one (root on Linux)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          check=False) if sys.platform.startswith("linux") and os.geteuid() == 0 else None
    if made is None or made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_job_whose_input_does_not_fit_in_worker_temp_dir_fails_with_the_fix(db_url: str, tmp_path: Path,
                                                                              small_temp_dir: Path) -> None:
    local_storage_with_input(tmp_path)
    source = tmp_path / "storage" / "media-uploads" / "anonymous" / "clip.mp4"
    source.parent.mkdir()
    (tmp_path / "storage" / "media-uploads" / "u" / "clip.mp4").rename(source)
    job = run_one_job(db_url, tmp_path, "media.probe", {"input": {"path": "anonymous/clip.mp4"}},
                      temp_dir=small_temp_dir, max_attempts=1)
    assert job.status == "failed"
    assert job.error.startswith("input object media-uploads/anonymous/clip.mp4 (it needs 3.0 MB, 3,145,733 bytes) "
                                "does not fit: the disk of WORKER_TEMP_DIR is full"), job.error
    assert "internal error" not in job.error and "OSError" not in job.error
    assert list(small_temp_dir.iterdir()) == []  # the job's temporary directory is gone
