"""Live outputs: the watcher hands over only files ffmpeg has finished, each once and in name order; the delivery
stores a file again if it changed after it was stored during the run (a run done again on the CPU)."""

from __future__ import annotations

import os
from pathlib import Path

from handlers.base import Artifact, LiveOutput
from tests.support.workers import wait_until
from utils.storage import LocalStorage
from worker.control import JobControl
from worker.delivery import Delivery, Destination
from worker.live_outputs import LiveOutputWatch

SEGMENTS = LiveOutput("hls/*/seg_*.ts", "video/mp2t")


class NoJournal:
    def load(self, bucket: str, path: str) -> None:
        return None

    def save(self, *args: object) -> None:
        pass

    def clear(self, *args: object) -> None:
        pass


def test_the_watcher_hands_over_finished_segments_once_in_name_order_and_never_a_temporary_file(
        tmp_path: Path) -> None:
    handed: list[str] = []
    watch = LiveOutputWatch(tmp_path, (SEGMENTS,), lambda name, path, content_type, identity: handed.append(name))
    folder = tmp_path / "hls" / "360p"
    folder.mkdir(parents=True)
    (folder / "seg_001.ts").write_bytes(b"b")
    (folder / "seg_000.ts").write_bytes(b"a")
    (folder / "seg_002.ts.tmp").write_bytes(b"half")  # ffmpeg is still writing it, or was killed writing it
    (folder / "index.m3u8").write_text("#EXTM3U\n")
    watch.scan()
    assert handed == ["hls/360p/seg_000.ts", "hls/360p/seg_001.ts"]
    os.rename(folder / "seg_002.ts.tmp", folder / "seg_002.ts")  # the muxer closed it
    watch.scan()
    watch.scan()
    assert handed == ["hls/360p/seg_000.ts", "hls/360p/seg_001.ts", "hls/360p/seg_002.ts"]


def test_segments_named_as_ffmpeg_exits_are_handed_over_when_the_run_ends_not_after_verification(
        tmp_path: Path) -> None:
    handed: list[str] = []
    folder = tmp_path / "hls" / "360p"
    folder.mkdir(parents=True)
    with LiveOutputWatch(tmp_path, (SEGMENTS,), lambda name, path, content_type, identity: handed.append(name),
                         poll_seconds=3600):  # no look of its own before the run ends
        (folder / "seg_000.ts").write_bytes(b"the last segment")
    assert handed == ["hls/360p/seg_000.ts"]


def test_a_failed_run_hands_over_nothing_more(tmp_path: Path) -> None:
    handed: list[str] = []
    folder = tmp_path / "hls" / "360p"
    folder.mkdir(parents=True)
    try:
        with LiveOutputWatch(tmp_path, (SEGMENTS,), lambda name, path, content_type, identity: handed.append(name),
                             poll_seconds=3600):
            (folder / "seg_000.ts").write_bytes(b"from a run that then failed")
            raise RuntimeError("ffmpeg failed")
    except RuntimeError:
        pass
    assert handed == []


def test_a_file_stored_during_the_run_and_written_again_after_is_stored_again(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    work = tmp_path / "work"
    work.mkdir()
    segment = work / "seg_000.ts"
    segment.write_bytes(b"from the hardware run")
    stored_file = tmp_path / "storage" / "media-outputs" / "u" / "j" / "seg_000.ts"
    with Delivery(Destination("media-outputs", "u/j", retry=False), JobControl(), NoJournal(), [storage]) as delivery:
        delivery.submit("seg_000.ts", segment, "video/mp2t")
        wait_until(lambda: stored_file.exists(), timeout=10, what="the first upload stored")
        again = work / "seg_000.ts.tmp"
        again.write_bytes(b"from the run on the CPU, longer")
        os.rename(again, segment)
        (stored,) = delivery.store([Artifact("hls_segment", "seg_000.ts", segment, "video/mp2t")])
    assert stored_file.read_bytes() == segment.read_bytes()
    assert stored.size == segment.stat().st_size
