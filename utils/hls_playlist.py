"""HLS media playlists as text: the live snapshot a player may load while the encode runs, and the final VOD form.

Pure functions, no I/O: the worker reads ffmpeg's playlists and stores what these return.
"""

from __future__ import annotations

from collections.abc import Callable

PLAYLIST_TYPE_TAG = "#EXT-X-PLAYLIST-TYPE:"
END_TAG = "#EXT-X-ENDLIST"
SEGMENT_TAG = "#EXTINF:"


def playlist_uris(text: str) -> list[str]:
    """Every URI a playlist names (a master's rendition playlists, a media playlist's segments), in order."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def live_snapshot(text: str, stored: Callable[[str], bool]) -> tuple[str, int]:
    """An EVENT playlist of the longest run of segments from the first for which stored(uri) holds, and how many
    segments it names. It never names a segment not stored and never ends: the final VOD playlist replaces it."""
    head: list[str] = []
    body: list[str] = []
    pending: list[str] = []  # the tags of the next segment, kept until its URI shows whether it is stored
    count = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == END_TAG:
            continue
        if line.startswith(PLAYLIST_TYPE_TAG):
            line = PLAYLIST_TYPE_TAG + "EVENT"  # a player then keeps reloading it for new segments
        if not line.startswith("#"):
            if not stored(line):
                break
            body += [*pending, line]
            pending, count = [], count + 1
        elif count or pending or line.startswith(SEGMENT_TAG):
            pending.append(line)
        else:
            head.append(line)
    if not any(line.startswith(PLAYLIST_TYPE_TAG) for line in head):
        head.insert(1, PLAYLIST_TYPE_TAG + "EVENT")
    return "\n".join([*head, *body]) + "\n", count


def as_vod(text: str) -> str:
    """The finished playlist as VOD: ffmpeg writes a progressive run's as EVENT, and ends it, which says the same
    to a player only once it has read the end; VOD tells it at once that nothing will change."""
    return text.replace(PLAYLIST_TYPE_TAG + "EVENT", PLAYLIST_TYPE_TAG + "VOD")
