"""Progressive HLS without a server: snapshots name only stored segments; the master waits for every rendition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handlers.base import LivePlaylists
from utils.hls_playlist import as_vod, live_snapshot
from worker.live_playlists import LivePlaylistPublisher

PLAYLIST = ("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
            "#EXTINF:1.0,\nseg_000.ts\n#EXTINF:1.0,\nseg_001.ts\n#EXTINF:1.0,\nseg_002.ts\n")


class StubDelivery:
    """Records what is submitted; a file counts as stored once the test says so."""

    def __init__(self) -> None:
        self.stored: set[Path] = set()
        self.submitted: list[tuple[str, Path, str | None]] = []

    def is_stored(self, path: Path) -> bool:
        return path in self.stored

    def submit(self, name: str, path: Path, content_type: str, cache_control: str | None = None) -> None:
        self.submitted.append((name, path, cache_control))


def test_a_snapshot_names_the_stored_run_of_segments_from_the_first_and_never_ends() -> None:
    text, count = live_snapshot(PLAYLIST + "#EXT-X-ENDLIST\n", {"seg_000.ts", "seg_002.ts"}.__contains__)
    assert count == 1 and "seg_000.ts" in text and "seg_002.ts" not in text and "ENDLIST" not in text
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in live_snapshot(as_vod(PLAYLIST), lambda uri: True)[0]
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in as_vod(PLAYLIST)


def test_the_master_is_stored_only_once_every_rendition_has_a_stored_snapshot(tmp_path: Path) -> None:
    hls = tmp_path / "hls"
    for name in ("a", "b"):
        (hls / name).mkdir(parents=True)
        (hls / name / "index.m3u8").write_text(PLAYLIST)
    (hls / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na/index.m3u8\n"
                                     "#EXT-X-STREAM-INF:BANDWIDTH=1\nb/index.m3u8\n")
    delivery, playable = StubDelivery(), []
    live = LivePlaylistPublisher(tmp_path, LivePlaylists("hls/master.m3u8", "x"), delivery,  # type: ignore[arg-type]
                                 lambda: playable.append(True))
    (tmp_path / ".live").mkdir()
    live.publish()
    assert not delivery.submitted, "no segment is stored: nothing may be published"
    delivery.stored |= {hls / "a" / "seg_000.ts", hls / "a" / "seg_001.ts", hls / "b" / "seg_000.ts"}
    live.publish()
    snapshots: dict[str, Any] = {name: path.read_text() for name, path, _ in delivery.submitted}
    assert set(snapshots) == {"hls/a/index.m3u8", "hls/b/index.m3u8"}
    assert "seg_001.ts" in snapshots["hls/a/index.m3u8"] and "seg_001.ts" not in snapshots["hls/b/index.m3u8"]
    assert {cache for *_, cache in delivery.submitted} == {"1"}
    delivery.stored.add(delivery.submitted[0][1])
    live.publish()
    assert "hls/master.m3u8" not in [name for name, *_ in delivery.submitted], "rendition b has no stored snapshot"
    delivery.stored |= {path for _, path, _ in delivery.submitted}
    live.publish()
    assert delivery.submitted[-1][0] == "hls/master.m3u8" and not playable
    delivery.stored.add(delivery.submitted[-1][1])
    live.publish()
    assert playable == [True] and live.playable_at is not None
