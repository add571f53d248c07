"""Generated media and file digests."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any


def make_clip(path: Path, seconds: float = 2, size: str = "320x240", rate: int = 25, audio: bool = True,
              extra: list[str] | None = None) -> Path:
    """Generate a small H.264 (+ AAC) clip with lavfi."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *(extra or []), str(path)]
    subprocess.run(cmd, check=True)
    return path


def ffprobe_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def sha256(path: Path) -> str:
    """The file's sha256, read in blocks (some test files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
