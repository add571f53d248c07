"""Progressive HLS: the playlists a player may load while ffmpeg still runs (handlers.base.LivePlaylists).

A thread looks every POLL_SECONDS at ffmpeg's master and the EVENT playlists it names, and stores a snapshot of
each that names only segments already stored, with a short cache-control so players reload it; once every
rendition's first snapshot is stored, it stores the master and calls `on_playable`. Each object has one snapshot
in flight at most, so an older one never lands after a newer one; leaving the `with` normally waits for those in
flight, so the final VOD playlists, stored after, replace them.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from handlers.base import LivePlaylists
from utils.hls_playlist import live_snapshot, playlist_uris
from worker.delivery import Delivery
from worker.errors import JobInterrupted
from worker.live_outputs import POLL_SECONDS
from worker.logs import log

LIVE_CACHE_SECONDS = "1"  # a player reloads a live playlist about once a segment; this keeps caches from hiding one
SNAPSHOT_FOLDER = ".live"  # under the work directory, apart from ffmpeg's files and the live outputs' patterns


class LivePlaylistPublisher:
    """While in its `with`, keeps the stored playlists of `spec` current; `playable_at` is when the master was."""

    def __init__(self, root: Path, spec: LivePlaylists | None, delivery: Delivery,
                 on_playable: Callable[[], None], poll_seconds: float = POLL_SECONDS) -> None:
        self.root, self.spec, self.delivery, self.on_playable = root, spec, delivery, on_playable
        self.poll_seconds = poll_seconds
        self.playable_at: str | None = None
        self._named: dict[Path, int] = {}  # rendition playlist -> segments its latest snapshot names
        self._live: set[Path] = set()  # rendition playlists with a snapshot stored
        self._in_flight: dict[str, Path] = {}  # object name -> its latest snapshot's local file
        self._master: Path | None = None
        self._written = 0  # snapshots written, which numbers their files
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LivePlaylistPublisher:
        if self.spec is not None:
            (self.root / SNAPSHOT_FOLDER).mkdir(exist_ok=True)
            self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._watch,),
                                            name="live-playlists", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:  # the final playlists go next: every snapshot must have landed before them
            for snapshot in self._in_flight.values():
                self.delivery.wait_stored(snapshot)

    def publish(self) -> None:
        """One look: store a newer snapshot of each rendition playlist, then the master once all have one."""
        assert self.spec is not None
        master = self.root / self.spec.master
        if not master.is_file():  # ffmpeg writes it once every rendition has its first segment
            return
        text = master.read_text()
        renditions = [master.parent / uri for uri in playlist_uris(text)]
        for playlist in renditions:
            self._refresh(playlist)
        if self._master is None and renditions and all(p in self._live for p in renditions):
            self._master = self._store_snapshot(master, text)
        if self._master is not None and self.playable_at is None and self.delivery.is_stored(self._master):
            self.playable_at = datetime.now(UTC).isoformat()
            log.info("hls_playable", master=self.spec.master)
            self.on_playable()

    def _refresh(self, playlist: Path) -> None:
        name = self._name(playlist)
        latest = self._in_flight.get(name)
        if latest is not None:
            if not self.delivery.is_stored(latest):
                return
            self._live.add(playlist)
        text, count = live_snapshot(playlist.read_text(), lambda uri: self.delivery.is_stored(playlist.parent / uri))
        if count > self._named.get(playlist, 0):
            self._store_snapshot(playlist, text)
            self._named[playlist] = count

    def _store_snapshot(self, playlist: Path, text: str) -> Path:
        """Write text to a new file (one being uploaded is never rewritten) and queue it as playlist's object."""
        name = self._name(playlist)
        self._written += 1
        snapshot = self.root / SNAPSHOT_FOLDER / f"{self._written:06d}.m3u8"
        snapshot.write_text(text)
        self._in_flight[name] = snapshot
        assert self.spec is not None
        self.delivery.submit(name, snapshot, self.spec.content_type, cache_control=LIVE_CACHE_SECONDS)
        return snapshot

    def _name(self, playlist: Path) -> str:
        return playlist.relative_to(self.root).as_posix()

    def _watch(self) -> None:
        # A failing look must not end the watch: the final playlists are stored once ffmpeg exits in any case.
        while not self._stop.wait(self.poll_seconds):
            try:
                self.publish()
            except (OSError, ValueError) as exc:
                log.warning("live_playlists_unreadable", error=str(exc))
            except JobInterrupted:
                return
