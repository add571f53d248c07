"""Storage retention's pure decisions, its settings, and the local backend's listing (issue 20)."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import UUID

import pytest

from utils.storage import LocalStorage
from worker.config import load_settings
from worker.db.retention import ExpiredJob, ObjectRow, RetentionStore, like_prefix
from worker.errors import ConfigError
from worker.retention import (
    Deletion,
    PassReport,
    RetentionPass,
    RetentionPolicy,
    emptied_jobs,
    next_cursor,
    old_enough,
    outputs_by_job,
)

A, B = UUID(int=1), UUID(int=2)


def policy(hours: float | None = 1.0, follows: bool = False, lease: float = 60.0) -> RetentionPolicy:
    return RetentionPolicy(None if hours is None else hours * 3600, follows, 30 * 86400, 90 * 86400, lease)


def test_uploads_become_candidates_one_lease_after_the_retention() -> None:
    assert policy(2.0, lease=60).upload_cutoff_seconds == 2 * 3600 + 60
    assert policy(None).upload_cutoff_seconds is None
    assert not policy(None).enabled and policy(None, follows=True).enabled and policy(1.0).enabled


def test_old_enough_is_strict() -> None:
    objects = [ObjectRow("a", 1, 99.0), ObjectRow("b", 1, 100.0), ObjectRow("c", 1, 101.0)]
    assert [o.path for o in old_enough(objects, 100.0)] == ["c"]


def test_a_job_owns_only_what_lies_under_its_folder() -> None:
    jobs = [ExpiredJob(A, "u/1/", 0.0), ExpiredJob(B, "u/10/", 0.0)]
    objects = [ObjectRow("u/1/video.mp4", 1, 0), ObjectRow("u/10/video.mp4", 1, 0), ObjectRow("u/1", 1, 0),
               ObjectRow("v/1/video.mp4", 1, 0)]
    owned = outputs_by_job(jobs, objects)
    assert [o.path for o in owned[A]] == ["u/1/video.mp4"] and [o.path for o in owned[B]] == ["u/10/video.mp4"]
    assert emptied_jobs(jobs, [ObjectRow("u/10/poster.jpg", 1, 0)]) == [A]


def test_a_short_batch_is_the_last() -> None:
    batch = [ObjectRow("a", 1, 0), ObjectRow("b", 1, 0)]
    assert next_cursor(batch, 2) == "b" and next_cursor(batch, 3) is None and next_cursor([], 1) is None


def test_like_patterns_escape_wildcards() -> None:
    assert like_prefix("a_b/100%/") == "a\\_b/100\\%/%"


def test_the_report_adds_bytes_by_bucket_and_reason() -> None:
    report = PassReport(deletions=[Deletion("media-uploads", "a", 10, 0, "abandoned_upload"),
                                   Deletion("media-uploads", "b", 5, 0, "abandoned_upload"),
                                   Deletion("media-outputs", "c", 7, 0, "expired_job")])
    assert report.bytes_by() == {("media-uploads", "abandoned_upload"): 15, ("media-outputs", "expired_job"): 7}


def test_a_bucket_outside_the_two_is_refused(tmp_path: Path) -> None:
    run = RetentionPass(RetentionStore("postgresql://unused"), LocalStorage(tmp_path), policy(), PassReport())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x").write_bytes(b"x")
    with pytest.raises(ValueError, match="never touches bucket 'elsewhere'"):
        run.delete("elsewhere", [])
    assert (tmp_path / "elsewhere" / "x").exists()


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_a_retention_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="UPLOAD_RETENTION_HOURS"):
        load_settings({"UPLOAD_RETENTION_HOURS": value}, env_file=None)


def test_retention_settings_default_to_keeping_everything() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.upload_retention_hours is None and settings.output_retention_follows_jobs is False
    on = load_settings({"UPLOAD_RETENTION_HOURS": "0.5", "OUTPUT_RETENTION_FOLLOWS_JOBS": "true"}, env_file=None)
    assert RetentionPolicy.from_settings(on).upload_retention_seconds == 1800 and on.output_retention_follows_jobs


def test_local_listing_skips_copies_in_progress_and_links(tmp_path: Path) -> None:
    folder = tmp_path / "media-uploads" / "u" / "j"
    folder.mkdir(parents=True)
    (folder / "b.mp4").write_bytes(b"12345")
    (folder / "a.mp4").write_bytes(b"1")
    (folder / ".upload-tmp123").write_bytes(b"partial")
    outside = tmp_path / "secret"
    outside.write_bytes(b"s")
    os.symlink(outside, folder / "link.mp4")
    (tmp_path / "media-uploads" / "u" / "other").mkdir()
    (tmp_path / "media-uploads" / "u" / "other" / "c.mp4").write_bytes(b"cc")
    storage = LocalStorage(tmp_path)
    assert [(o.path, o.size) for o in storage.list_objects("media-uploads")] == [
        ("u/j/a.mp4", 1), ("u/j/b.mp4", 5), ("u/other/c.mp4", 2)]
    assert [o.path for o in storage.list_objects("media-uploads", "u/j/")] == ["u/j/a.mp4", "u/j/b.mp4"]
    assert storage.list_objects("media-uploads", "nobody/") == []
    assert storage.list_objects("media-outputs") == []
