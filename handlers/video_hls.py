"""video.hls: an adaptive HLS ladder (never upscaled) with aligned keyframes and a master playlist, from one decode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import Field

from handlers import register
from handlers.base import (
    Artifact,
    Handler,
    HandlerResult,
    InputPayload,
    JobContext,
    LiveOutput,
    LivePlaylists,
    Manifest,
)
from utils.ffmpeg import MediaError
from utils.ffmpeg_commands import hls_command
from utils.hls_playlist import as_vod
from utils.media_plan import Accel, Rendition, hls_ladder
from utils.verify import Expect, duration_tolerance

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
MANIFEST_TYPE = "application/json"


class HlsPayload(InputPayload):
    heights: list[Annotated[int, Field(ge=16, le=4320)]] = Field(default=[360, 720, 1080], min_length=1, max_length=6,
                               description="rendition heights; those above the source's are dropped")
    segment_seconds: float = Field(default=4.0, ge=1, le=10, description="target segment length")
    progressive: bool = Field(default=False, description="playable while the job runs: EVENT playlists stored early")


def run(payload: HlsPayload, ctx: JobContext) -> HandlerResult:
    video = ctx.probe.video
    if video is None:
        raise MediaError("the input has no video stream to stream as HLS")
    ladder = hls_ladder(*video.display_size, payload.heights)
    out_dir = ctx.work_dir / "hls"
    for rung in ladder:
        (out_dir / rung.name).mkdir(parents=True, exist_ok=True)

    def build(accel: Accel) -> list[str]:
        return hls_command(ctx.media.ffmpeg_path, ctx.input_path, ctx.probe.demuxer, out_dir, ladder,
                           segment_seconds=payload.segment_seconds, frame_rate=video.frame_rate,
                           has_audio=ctx.probe.audio is not None, preset=ctx.media.web_video.preset, accel=accel,
                           tonemap=ctx.tonemap, event=payload.progressive)

    outcome = ctx.run_ffmpeg(build)
    if payload.progressive:
        finish_playlists(out_dir, ladder)
    duration = ctx.probe.duration
    artifacts = ladder_artifacts(out_dir, ladder, lambda rung: Expect(
        video_codec="h264", pix_fmt="yuv420p", size=(rung.width, rung.height),
        audio_codec="aac" if ctx.probe.audio else None, duration=duration, tolerance=duration_tolerance(duration)))
    return HandlerResult(artifacts=artifacts, metadata={**outcome.metadata(), **ctx.tonemap_metadata()},
                         manifest=Manifest(kind="hls_manifest", name="hls/manifest.json",
                                           path=out_dir / "manifest.json"))


def finish_playlists(out_dir: Path, ladder: list[Rendition]) -> None:
    """Turn the ended EVENT playlists of a progressive run into VOD, each replaced whole: the runner may be reading
    it for a live snapshot at this moment."""
    for rung in ladder:
        playlist = out_dir / rung.name / "index.m3u8"
        if playlist.is_file():  # a missing one fails the job when the artifacts are checked
            written = playlist.with_name("index.m3u8.vod")
            written.write_text(as_vod(playlist.read_text()))
            written.replace(playlist)


def live_playlists(payload: HlsPayload) -> LivePlaylists | None:
    return LivePlaylists("hls/master.m3u8", PLAYLIST_TYPE) if payload.progressive else None


def ladder_artifacts(out_dir: Path, ladder: list[Rendition],
                     expect: Callable[[Rendition], Expect | None]) -> list[Artifact]:
    """The master playlist, then each rendition's playlist and segments. Only the playlists are listed in
    the result (with their segment count and bytes); the segments are named in hls/manifest.json."""
    artifacts = [Artifact(kind="hls_master", name="hls/master.m3u8", path=out_dir / "master.m3u8",
                          content_type=PLAYLIST_TYPE, meta={"renditions": [r.name for r in ladder]})]
    for rung in ladder:
        artifacts += rendition_artifacts(out_dir, rung, expect(rung))
    return artifacts


def rendition_artifacts(out_dir: Path, rung: Rendition, expect: Expect | None) -> list[Artifact]:
    """One rendition's playlist (verified as a whole stream) and its segments."""
    folder = out_dir / rung.name
    segments = [Artifact(kind="hls_segment", name=f"hls/{rung.name}/{seg.name}", path=seg, content_type=SEGMENT_TYPE,
                         listed=False) for seg in sorted(folder.glob("seg_*.ts"))]
    playlist = Artifact(kind="hls_playlist", name=f"hls/{rung.name}/index.m3u8", path=folder / "index.m3u8",
                        content_type=PLAYLIST_TYPE, expect=expect,
                        meta={"rendition": rung.name, "width": rung.width, "height": rung.height,
                              "video_kbps": rung.video_kbps, "segments": len(segments),
                              "bytes": sum(seg.path.stat().st_size for seg in segments)})
    return [playlist, *segments]


HANDLER = register(Handler("video.hls", HlsPayload, run,
                           "HLS ladder (360p/720p/1080p, never upscaled) with aligned keyframes and a master playlist.",
                           output_types=(PLAYLIST_TYPE, SEGMENT_TYPE, MANIFEST_TYPE),
                           live_outputs=(LiveOutput("hls/*/seg_*.ts", SEGMENT_TYPE),), live_playlists=live_playlists))
