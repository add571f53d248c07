"""Evenly spaced JPEG stills, shared by video.process and video.thumbnails."""

from __future__ import annotations

from pathlib import Path

from handlers.base import Artifact, JobContext, LiveOutput
from utils.ffmpeg_commands import Stills
from utils.media_plan import fit_width, sample_times
from utils.verify import Expect

# ffmpeg writes each still whole under its final name (atomic_writing), so the runner stores it at once.
STILLS = LiveOutput("thumbnails/thumb_*.jpg", "image/jpeg")


def plan_stills(ctx: JobContext, folder: str, count: int, width: int) -> Stills:
    """Where and at what size `count` stills of the input's video go (folder under the work dir)."""
    video = ctx.probe.video
    assert video is not None
    (ctx.work_dir / folder).mkdir(exist_ok=True)
    duration = video.duration or ctx.probe.duration
    return Stills(ctx.work_dir / folder / "thumb_%03d.jpg", sample_times(duration, count, video.frame_rate),
                  fit_width(*video.display_size, width))


def still_artifacts(stills: Stills, folder: str) -> list[Artifact]:
    """The stills ffmpeg wrote; a very short input may yield fewer than asked for."""
    written = sorted(Path(stills.pattern).parent.glob("thumb_*.jpg"))
    expect = Expect(video_codec="mjpeg", size=stills.size)
    times = sorted(set(stills.times))[:len(written)]
    return [Artifact(kind="thumbnail", name=f"{folder}/{path.name}", path=path, content_type="image/jpeg",
                     meta={"time": t}, expect=expect) for path, t in zip(written, times, strict=True)]
