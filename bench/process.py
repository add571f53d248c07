"""Benchmark video.process: the handler vs the same ffmpeg command by hand, and vs one ffmpeg per output.

    python bench/process.py [--seconds 60] [--size 1920x1080] [--preset veryfast] [--source camera]

Prints wall times and two ratios: handler / bare command (target <= 1.03, the cost of supervision)
and naive / single pass (target >= 1.5, the gain of decoding once). Not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: its queue.py would shadow the stdlib

from handlers import load_handlers  # noqa: E402
from handlers.base import JobContext, MediaSettings  # noqa: E402
from handlers.stills import plan_stills  # noqa: E402
from utils.ffmpeg import MediaLimits, probe  # noqa: E402
from utils.ffmpeg_commands import ProcessOutputs, WebVideoOptions, video_process_command  # noqa: E402

THUMBNAILS = 3


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# "synthetic": testsrc2 at x264 ultrafast, cheap to decode. "camera": film grain, High profile with
# B-frames and CABAC at 12 Mb/s, closer to a phone's upload, which costs several times more to decode.
SOURCES = {
    "synthetic": ["-c:v", "libx264", "-preset", "ultrafast"],
    "camera": ["-vf", "noise=alls=10:allf=t", "-c:v", "libx264", "-preset", "faster", "-profile:v", "high",
               "-bf", "3", "-b:v", "12M"],
}


def make_source(path: Path, seconds: int, size: str, kind: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=duration={seconds}", *SOURCES[kind],
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)


def context(source: Path, work: Path, preset: str) -> JobContext:
    work.mkdir(parents=True, exist_ok=True)
    media = MediaSettings("ffmpeg", "ffprobe", WebVideoOptions(1080, 23, preset), MediaLimits(10**9, 10**5, 16),
                          timeout_seconds=0, stall_seconds=120)
    return JobContext(input_path=source, probe=probe("ffprobe", source), work_dir=work, media=media,
                      report_progress=lambda _: None, should_stop=lambda: False)


def single_pass_outputs(ctx: JobContext) -> ProcessOutputs:
    return ProcessOutputs(mp4=ctx.work_dir / "video.mp4", poster=ctx.work_dir / "poster.jpg",
                          stills=plan_stills(ctx, "thumbnails", THUMBNAILS, 320), m4a=ctx.work_dir / "audio.m4a")


def command(ctx: JobContext, outputs: ProcessOutputs) -> list[str]:
    assert ctx.probe.video is not None
    return video_process_command("ffmpeg", ctx.input_path, ctx.probe.demuxer, outputs, duration=ctx.probe.duration,
                                 has_audio=True, opts=ctx.media.web_video)


def naive_commands(ctx: JobContext) -> list[list[str]]:
    """One ffmpeg per output, as a first implementation would do it (each decodes what it needs)."""
    full = single_pass_outputs(ctx)
    return [command(ctx, ProcessOutputs(mp4=full.mp4)), command(ctx, ProcessOutputs(poster=full.poster)),
            command(ctx, ProcessOutputs(stills=full.stills)), command(ctx, ProcessOutputs(m4a=full.m4a))]


def best_single_pass(source: Path, root: Path, preset: str, rounds: int) -> tuple[float, float]:
    """(handler, bare) seconds, best of `rounds` interleaved runs: the machine is shared and noisy."""
    handler = load_handlers()["video.process"]
    payload = handler.parse_payload({"input": {"path": "u/source.mp4"}, "thumbnails": THUMBNAILS, "audio": True})
    handler_times, bare_times = [], []
    for round_ in range(rounds):
        bare = context(source, root / f"bare{round_}", preset)
        argv = command(bare, single_pass_outputs(bare))
        bare_times.append(timed(lambda: subprocess.run(argv, check=True)))  # noqa: B023 - called at once
        ctx = context(source, root / f"handler{round_}", preset)
        handler_times.append(timed(lambda: handler.run(payload, ctx)))  # noqa: B023 - called at once
    return min(handler_times), min(bare_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the web MP4 (VIDEO_PRESET)")
    parser.add_argument("--rounds", type=int, default=2, help="handler and bare runs, interleaved; best is kept")
    parser.add_argument("--source", choices=sorted(SOURCES), default="synthetic", help="how the input clip is encoded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-bench-") as tmp:
        root = Path(tmp)
        source = root / "source.mp4"
        print(f"generating a {args.seconds}s {args.size} {args.source} source ...", flush=True)
        make_source(source, args.seconds, args.size, args.source)
        handler_s, bare_s = best_single_pass(source, root, args.preset, args.rounds)
        naive_ctx = context(source, root / "naive", args.preset)
        naive_s = timed(lambda: [subprocess.run(argv, check=True) for argv in naive_commands(naive_ctx)])
    print(f"source: {args.seconds}s {args.size} {args.source}, preset {args.preset}, outputs: mp4 + poster + {THUMBNAILS} "
          "thumbnails + m4a")
    print(f"handler (supervised, one decode): {handler_s:7.2f}s")
    print(f"bare ffmpeg, same command:        {bare_s:7.2f}s   handler/bare = {handler_s / bare_s:.3f} (target <= 1.03)")
    print(f"naive, one ffmpeg per output:     {naive_s:7.2f}s   naive/single = {naive_s / bare_s:.2f} (target >= 1.5)")


if __name__ == "__main__":
    main()
