"""Whose file a job may read, and what a result may hold so that Postgres can store it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from handlers.base import InputPayload
from worker.db import ClaimedJob
from worker.errors import InvalidPayload, PermanentJobError
from worker.job_checks import check_input_owner, check_storable

A = UUID("aaaaaaaa-0000-4000-8000-000000000001")
B = UUID("bbbbbbbb-0000-4000-8000-000000000002")


def job(user_id: UUID | None) -> ClaimedJob:
    return ClaimedJob(id=UUID(int=1), user_id=user_id, type="video.process", priority=0, payload={}, attempts=1,
                      max_attempts=3)


def payload(path: str, bucket: str = "media-uploads") -> InputPayload:
    return InputPayload.model_validate({"input": {"bucket": bucket, "path": path}})


@pytest.mark.parametrize(("owner", "path"), [
    (A, f"{A}/clip.mp4"),
    (A, f"{A}/2026/holiday/clip.mp4"),
    (A, f"{A}/./clip.mp4"),  # a dot segment that stays inside the folder
    (None, "anonymous/clip.mp4"),
])
def test_inputs_in_the_owners_folder_are_allowed(owner: UUID | None, path: str) -> None:
    check_input_owner(job(owner), payload(path))


@pytest.mark.parametrize(("owner", "path"), [
    (A, f"{B}/private.mp4"),  # another user's file
    (A, f"{A}/../{B}/private.mp4"),  # the HTTP client normalises this to B's file
    (A, f"{A}/sub/../../{B}/private.mp4"),
    (A, f"{A}/.."),
    (A, f"/{A}/clip.mp4"),
    (A, f"{A}-not-a/clip.mp4"),
    (A, f"{A}"),  # the folder itself, no object in it
    (A, "anonymous/clip.mp4"),  # a signed-in user's job may not read the anonymous folder
    (None, f"{A}/clip.mp4"),  # nor an anonymous job a user's
    (None, f"anonymous/../{A}/clip.mp4"),
])
def test_inputs_outside_the_owners_folder_are_refused_naming_the_folder(owner: UUID | None, path: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        check_input_owner(job(owner), payload(path))
    folder = str(owner) if owner else "anonymous"
    assert f"is outside the job owner's folder {folder}/" in str(caught.value)
    assert repr(path) in str(caught.value)


def test_inputs_from_another_bucket_are_refused_even_in_the_owners_folder() -> None:
    with pytest.raises(InvalidPayload, match="'media-outputs' is not allowed: inputs must be uploaded to media-uploads"):
        check_input_owner(job(A), payload(f"{A}/clip.mp4", bucket="media-outputs"))


@pytest.mark.parametrize("parts", [
    [{"duration": 2.5, "streams": [{"codec": "h264"}]}, {}, {"sha256": "ab", "size": 10}],
    [{"title": "a \\u0000 that is six characters, not a NUL"}],
    [{"nested": [("tuple", 1), None, True]}],
    [],
])
def test_results_postgres_can_store_pass(parts: list[Any]) -> None:
    check_storable("video.process", parts)


@pytest.mark.parametrize(("parts", "problem"), [
    ([{"duration": float("nan")}], "NaN or Infinity"),
    ([{}, {"fps": [25.0, float("inf")]}], "NaN or Infinity"),
    ([{"tags": {"comment": "bad\0tag"}}], "a NUL character"),
    ([{"tags": {"key\0": "value"}}], "a NUL character"),
    ([{"list": [("deep", ["x\0"])]}], "a NUL character"),
    ([{"raw": b"bytes"}], "a value JSON cannot hold"),
    ([{"set": {1, 2}}], "a value JSON cannot hold"),
])
def test_results_postgres_refuses_fail_the_job_naming_the_handler(parts: list[Any], problem: str) -> None:
    with pytest.raises(PermanentJobError) as caught:
        check_storable("audio.extract", parts)
    assert str(caught.value).startswith(f"the audio.extract handler returned {problem}")
    assert str(caught.value).endswith("which Postgres cannot store: fix the handler")
