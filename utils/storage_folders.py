"""LocalStorage's folder tree: the objects under a bucket's folder, and the temporaries killed copies left.

Walks never follow symbolic links: os.walk does not descend into linked folders, and linked files are
not listed, so nothing outside the storage folder is ever reported or removed.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("storage")


@dataclass(frozen=True)
class ListedObject:
    """An object found in a bucket's folder: its path in the bucket, its size in bytes, its last write (epoch s)."""

    path: str
    size: int
    modified_at: float


def list_folder_objects(bucket_folder: Path, under: str, skip_prefix: str) -> list[ListedObject]:
    """The regular files below bucket_folder/under ('' for all), as paths relative to bucket_folder, sorted by
    path; files whose names start with skip_prefix (copies in progress) and symbolic links are left out."""
    found = []
    for folder, _, names in os.walk(bucket_folder / under if under else bucket_folder):
        for name in (n for n in names if not n.startswith(skip_prefix)):
            file = Path(folder, name)
            try:
                info = file.lstat()
            except FileNotFoundError:
                continue  # deleted while we walked
            if stat.S_ISREG(info.st_mode):
                found.append(ListedObject(file.relative_to(bucket_folder).as_posix(), info.st_size, info.st_mtime))
    return sorted(found, key=lambda listed: listed.path)


def sweep_partial_uploads(root: Path, prefix: str, older_than_seconds: float) -> int:
    """Delete LocalStorage temporaries (names starting with prefix) nobody has written to for older_than_seconds:
    the partial copies of workers killed mid-upload (a live copy writes, and so touches its file, all the time).
    Return how many."""
    cutoff, removed = time.time() - older_than_seconds, 0
    for folder, _, names in os.walk(root):  # never follows links out of the storage folder
        for name in (n for n in names if n.startswith(prefix)):
            leftover = Path(folder, name)
            try:
                if leftover.lstat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # another worker swept it first
    if removed:
        log.info("partial_uploads_swept", root=str(root), files=removed)
    return removed
