"""The pure parts of delivery: progress summed across upload threads, and the manifest's document."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.base import Artifact, Manifest
from utils.storage import StoredObject
from worker.control import JobControl
from worker.delivery import Destination, manifest_document
from worker.errors import CancelRequested
from worker.uploads import UploadProgress, UploadStopped


def test_progress_sums_the_bytes_of_every_file_in_flight_and_stored() -> None:
    control = JobControl()
    progress = UploadProgress(control, total=400)
    first, second = progress.for_file("a"), progress.for_file("b")
    first(100, 200)
    second(100, 200)
    assert control.progress == pytest.approx(85 + 14 * 0.5)
    progress.stored("a", 200)
    assert control.progress == pytest.approx(85 + 14 * 0.75)
    progress.stored("b", 200)
    assert control.progress == pytest.approx(99)


def test_progress_raises_the_jobs_interrupt_and_stops_after_another_upload_failed() -> None:
    control = JobControl()
    progress = UploadProgress(control, total=10)
    report = progress.for_file("a")
    progress.stop()
    with pytest.raises(UploadStopped):
        report(1, 10)
    control.interrupt(CancelRequested("cancelled"))
    with pytest.raises(CancelRequested):
        report(2, 10)


def test_the_manifest_names_the_files_under_its_folder_relative_to_it() -> None:
    dest = Destination("media-outputs", "u/j", retry=False)
    names = ["hls/master.m3u8", "hls/360p/seg_000.ts", "poster.jpg"]
    artifacts = [Artifact("k", name, Path("/w") / name, "video/mp2t", listed=False) for name in names]
    stored = [StoredObject("media-outputs", f"u/j/{name}", n + 1, f"{n:064x}", "video/mp2t")
              for n, name in enumerate(names)]
    document = manifest_document(Manifest("hls_manifest", "hls/manifest.json", Path("/w/m.json")), dest,
                                 artifacts, stored)
    assert document["folder"] == "u/j/hls/"
    assert [(f["name"], f["size"]) for f in document["files"]] == [("master.m3u8", 1), ("360p/seg_000.ts", 2)]
    assert (document["count"], document["bytes"]) == (2, 3)
