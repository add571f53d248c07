"""Small generated inputs for handler tests: awkward shapes, codecs and broken files.

Each input is made once per session (cached by folder); all are tiny so the suite stays fast on 2 cores.
"""

from __future__ import annotations

import random
import subprocess
from functools import cache
from pathlib import Path

from tests.support.media import make_clip

LAVFI_VIDEO = "testsrc2=size={size}:rate={rate}:duration={seconds}"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def rotated(path: Path, source: Path) -> Path:
    """`source` with a 90 degree display rotation (stream copy, as phones write it)."""
    ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    return path


def hevc_10bit(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", LAVFI_VIDEO.format(size="160x120", rate=25, seconds=1), "-c:v", "libx265",
           "-preset", "ultrafast", "-x265-params", "log-level=error", "-pix_fmt", "yuv420p10le", str(path))
    return path


def hdr(path: Path, transfer: str, size: str = "160x120", tags: str = "all") -> Path:
    """10-bit video with an HDR transfer (smpte2084 = PQ, arib-std-b67 = HLG), tagged BT.2020 as phones
    record it, or (tags="transfer") with primaries and matrix left unknown, as some editors write it.
    HEVC, like phones; FFV1 in Matroska for odd sizes, which HEVC cannot hold in 4:2:0."""
    tagging = ["-color_trc", transfer]
    if tags == "all":
        tagging += ["-color_primaries", "bt2020", "-colorspace", "bt2020nc"]
    width, height = (int(n) for n in size.split("x"))
    codec = ["-c:v", "ffv1"] if width % 2 or height % 2 else [
        "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", f"log-level=error:transfer={transfer}"
        + (":colorprim=bt2020:colormatrix=bt2020nc" if tags == "all" else "")]
    ffmpeg("-f", "lavfi", "-i", LAVFI_VIDEO.format(size="320x240", rate=25, seconds=1), "-vf", f"scale={size}",
           *codec, "-pix_fmt", "yuv420p10le", *tagging, str(path))
    return path


def vfr(path: Path) -> Path:
    """Variable frame rate: frames kept at irregular intervals."""
    ffmpeg("-f", "lavfi", "-i", LAVFI_VIDEO.format(size="160x120", rate=30, seconds=2),
           "-vf", "select='not(mod(n,3))+not(mod(n,5))'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def audio_only(path: Path, seconds: float = 2) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(path))
    return path


def many_streams(path: Path, source: Path) -> Path:
    """`source` with its audio mapped four times (five streams)."""
    ffmpeg("-i", str(source), *[a for _ in range(4) for a in ("-map", "0:a")], "-map", "0:v", "-c", "copy", str(path))
    return path


def hls_playlist_disguised(folder: Path, target: Path) -> Path:
    """An HLS playlist named .mp4 whose one segment is another local media file."""
    segment = folder / "private.ts"
    ffmpeg("-i", str(target), "-c", "copy", "-f", "mpegts", str(segment))
    playlist = folder / "playlist.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.0,\nfile:{segment}\n#EXT-X-ENDLIST\n")
    return playlist


def broken_inputs(folder: Path, faststart_clip: Path) -> dict[str, Path]:
    """Empty, random, corrupt (moov overwritten) and truncated (a quarter of a faststart MP4) files."""
    data = faststart_clip.read_bytes()
    corrupt = bytearray(data)
    corrupt[30:300] = b"\xff" * 270
    contents = {"empty": b"", "random": random.Random(6).randbytes(20_000), "corrupt": bytes(corrupt),
                "truncated": data[: len(data) // 4]}
    paths = {}
    for name, content in contents.items():
        paths[name] = folder / f"{name}.mp4"
        paths[name].write_bytes(content)
    return paths


@cache
def generate_inputs(folder: Path) -> dict[str, Path]:
    """Every input the handler tests use, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    landscape = make_clip(folder / "landscape.mp4", seconds=2, size="320x240")
    faststart = make_clip(folder / "faststart.mp4", seconds=2, size="160x120", extra=["-movflags", "+faststart"])
    return {
        "landscape": landscape,
        "portrait": rotated(folder / "portrait.mp4", landscape),
        # testsrc2 rounds to even sizes, so scale after it; 4:4:4 lets x264 keep odd sides.
        "odd": make_clip(folder / "odd.mp4", seconds=2, extra=["-vf", "scale=321:241", "-pix_fmt", "yuv444p"]),
        "no_audio": make_clip(folder / "no_audio.mp4", seconds=2, size="160x120", audio=False),
        "one_frame": make_clip(folder / "one_frame.mp4", seconds=0.04, size="160x120", audio=False),
        "vfr": vfr(folder / "vfr.mp4"),
        "hevc10": hevc_10bit(folder / "hevc10.mp4"),
        "hdr_pq": hdr(folder / "hdr_pq.mp4", "smpte2084"),
        "hdr_hlg": hdr(folder / "hdr_hlg.mp4", "arib-std-b67"),
        "hdr_pq_untagged": hdr(folder / "hdr_pq_untagged.mp4", "smpte2084", tags="transfer"),
        "hdr_odd": hdr(folder / "hdr_odd.mkv", "arib-std-b67", size="161x121"),
        "audio_only": audio_only(folder / "audio_only.m4a"),
        "long_audio": audio_only(folder / "long_audio.m4a", seconds=21),
        "big_frame": make_clip(folder / "big_frame.mp4", seconds=0.04, size="1280x800", audio=False),
        "many_streams": many_streams(folder / "many_streams.mp4", landscape),
        "hls_playlist": hls_playlist_disguised(folder, faststart),
        **broken_inputs(folder, faststart),
    }
