"""The local storage backend under hostile trials (issue 14 §6): links out of a bucket are refused,
and the partial copies of a worker killed mid-upload are swept when storage is next opened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from handlers import load_handlers
from tests.support.workers import ROOT
from utils.storage import STALE_TEMP_SECONDS, LocalStorage, StorageError
from worker.config import load_settings
from worker.daemon import Worker
from worker.db import JobStore
from worker.runtime import media_settings


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not yours\n")
    return secret


def bucket_folder(root: Path, bucket: str) -> Path:
    folder = root / bucket
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def assert_refused_as_leaving_the_bucket(exc: StorageError) -> None:
    assert exc.permanent and exc.status == 403
    assert "leads outside the folder of bucket" in str(exc) and "remove the link" in str(exc)


def test_a_planted_link_to_a_file_outside_the_bucket_is_never_read(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "storage"
    (bucket_folder(root, "media-uploads") / "u").mkdir()
    (root / "media-uploads" / "u" / "clip.mp4").symlink_to(outside)
    storage = LocalStorage(root)
    for call in (lambda: storage.download_file("media-uploads", "u/clip.mp4", tmp_path / "in", 1 << 20),
                 lambda: storage.object_digest("media-uploads", "u/clip.mp4"),
                 lambda: storage.signed_url("media-uploads", "u/clip.mp4", 60),
                 lambda: storage.delete("media-uploads", ["u/clip.mp4"])):
        with pytest.raises(StorageError) as info:
            call()
        assert_refused_as_leaving_the_bucket(info.value)
    assert not (tmp_path / "in").exists()
    assert outside.read_text() == "not yours\n"


def test_a_planted_folder_link_is_refused_for_writes_too(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "storage"
    (bucket_folder(root, "media-outputs") / "u").symlink_to(outside.parent, target_is_directory=True)
    source = tmp_path / "video.mp4"
    source.write_bytes(b"output")
    with pytest.raises(StorageError) as info:
        LocalStorage(root).upload_file("media-outputs", "u/job/video.mp4", source, "video/mp4")
    assert_refused_as_leaving_the_bucket(info.value)
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.txt"]


def test_links_that_stay_inside_the_bucket_and_a_linked_bucket_folder_still_work(tmp_path: Path) -> None:
    elsewhere = tmp_path / "big-disk" / "media-uploads"
    (elsewhere / "u").mkdir(parents=True)
    (elsewhere / "u" / "clip.mp4").write_bytes(b"video")
    (elsewhere / "u" / "alias.mp4").symlink_to("clip.mp4")
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "media-uploads").symlink_to(elsewhere, target_is_directory=True)
    assert LocalStorage(tmp_path / "storage").download_file("media-uploads", "u/alias.mp4", tmp_path / "in", 99) == 5


def test_a_symbolic_link_loop_is_refused_not_a_crash(tmp_path: Path) -> None:
    folder = bucket_folder(tmp_path / "storage", "media-uploads")
    (folder / "a").symlink_to("b")
    (folder / "b").symlink_to("a")
    with pytest.raises(StorageError) as info:
        LocalStorage(tmp_path / "storage").object_digest("media-uploads", "a")
    assert info.value.permanent


def test_the_worker_fails_a_job_whose_input_is_a_link_to_etc_passwd(db_url: str, tmp_path: Path) -> None:
    folder = bucket_folder(tmp_path / "storage", "media-uploads") / "anonymous"
    folder.mkdir()
    (folder / "clip.mp4").symlink_to("/etc/passwd")
    job = run_one_job(db_url, tmp_path, "media.probe", {"input": {"path": "anonymous/clip.mp4"}})
    assert job.status == "failed" and job.attempts == 1
    assert "media-uploads/anonymous/clip.mp4 leads outside the folder of bucket media-uploads" in (job.error or "")


def run_one_job(db_url: str, tmp_path: Path, job_type: str, payload: dict[str, Any], temp_dir: Path | None = None,
                max_attempts: int = 3) -> Any:
    """Insert one job, run an in-process worker on local storage under tmp_path until idle; return the row."""
    load_handlers()
    store = JobStore(db_url, "test:setup", lease_seconds=30)
    try:
        job_id = store.insert_job(job_type, payload, max_attempts=max_attempts).id
        settings = load_settings({"WORKER_TEMP_DIR": str(temp_dir or tmp_path / "work"), "LOG_LEVEL": "warning"},
                                 env_file=None)
        worker = Worker(settings, db_url, media_settings(settings), "test:w",
                        storage_factory=lambda: LocalStorage(tmp_path / "storage"), until_idle=True)
        assert worker.run() == 0
        return store.get_job(job_id)
    finally:
        store.close()


# -- partial uploads of a killed worker ---------------------------------------------------------

COPY_THEN_HANG = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from utils.storage import LocalStorage

    def hang(done, total):
        print("copying", done, total, flush=True)
        time.sleep(3600)  # killed here, mid-copy

    LocalStorage(Path(sys.argv[1])).upload_file("media-outputs", "u/job/video.mp4", Path(sys.argv[2]), "video/mp4",
                                                on_progress=hang)
""")


def kill_mid_upload(root: Path, source: Path) -> Path:
    """Start a real process copying source into root, SIGKILL it mid-copy; return its leftover temporary."""
    proc = subprocess.Popen([sys.executable, "-c", COPY_THEN_HANG, str(root), str(source)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("copying")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    leftovers = list((root / "media-outputs" / "u" / "job").glob(".upload-*"))
    assert len(leftovers) == 1 and not (root / "media-outputs" / "u" / "job" / "video.mp4").exists()
    return leftovers[0]


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_copys_partial_file_is_swept_when_storage_is_next_opened(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    leftover = kill_mid_upload(root, source)
    LocalStorage(root)
    assert leftover.exists(), "a temporary written to within the last minute may be a live copy: kept"
    age(leftover, STALE_TEMP_SECONDS + 5)
    LocalStorage(root)
    assert not leftover.exists()
    assert list(root.rglob(".upload-*")) == []


def test_the_sweep_keeps_objects_and_no_object_may_take_the_temporaries_name(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    kept = bucket_folder(root, "media-outputs") / "upload-notes.txt"
    kept.write_text("an object")
    age(kept, 3600)
    LocalStorage(root)
    assert kept.exists()
    with pytest.raises(StorageError, match="temporary files") as info:
        LocalStorage(root).upload_file("media-outputs", "u/.upload-x", kept, "text/plain")
    assert info.value.permanent
