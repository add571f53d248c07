"""The ffmpeg supervisor and input gate against real ffmpeg processes: stalls, cancels, timeouts, playlists."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.media import make_clip
from tests.support.media_inputs import hls_playlist_disguised
from utils.ffmpeg import ALLOWED_DEMUXERS, FFmpegStopped, MediaError, probe
from utils.ffmpeg_commands import ProcessOutputs, WebVideoOptions, video_process_command
from utils.ffmpeg_supervisor import run_ffmpeg
from utils.ffmpeg_watchdog import RunLimits


def realtime_source(seconds: float) -> list[str]:
    """A generated input read at its own pace (-re): ffmpeg cannot finish it in under `seconds`."""
    return ["-re", "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=10:duration={seconds}"]


def processes_with(marker: str) -> list[int]:
    """Live pids whose command line mentions marker."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def forking_ffmpeg(tmp_path: Path) -> str:
    """An 'ffmpeg' that runs the real one as its child, so killing only the parent would orphan it."""
    wrapper = tmp_path / "ffmpeg-wrapper"
    wrapper.write_text(f"#!{sys.executable}\nimport subprocess, sys\n"
                       "sys.exit(subprocess.run(['ffmpeg', *sys.argv[1:]]).returncode)\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def test_cancel_kills_the_whole_process_group_before_returning(forking_ffmpeg: str) -> None:
    marker = f"mw-cancel-{uuid.uuid4().hex}"
    argv = [forking_ffmpeg, *realtime_source(600), "-metadata", f"comment={marker}", "-f", "null", "-"]
    seen_running: set[int] = set()

    def should_stop() -> bool:  # cancel once the wrapper and its ffmpeg child both run
        seen_running.update(processes_with(marker))
        return len(seen_running) >= 2

    with pytest.raises(FFmpegStopped):
        run_ffmpeg(argv, duration=600, limits=RunLimits(600, 600), should_stop=should_stop)
    assert processes_with(marker) == [], "ffmpeg outlived the cancel"


def test_stall_watchdog_kills_ffmpeg_whose_input_stops_mid_run(tmp_path: Path) -> None:
    fifo = tmp_path / f"stalled-{uuid.uuid4().hex}.pcm"
    os.mkfifo(fifo)
    release = threading.Event()

    def writer() -> None:
        with open(fifo, "wb") as pipe:  # blocks until ffmpeg opens it
            pipe.write(b"\0" * 8000 * 2 * 2)  # two seconds of 8 kHz s16 mono, then silence without EOF
            pipe.flush()
            release.wait(30)

    threading.Thread(target=writer, daemon=True).start()
    progress: list[float] = []
    argv = ["ffmpeg", "-f", "s16le", "-ar", "8000", "-ac", "1", "-i", f"file:{fifo}", "-f", "null", "-"]
    try:
        with pytest.raises(MediaError) as caught:
            run_ffmpeg(argv, duration=10, limits=RunLimits(60, 1.5), on_progress=progress.append)
    finally:
        release.set()
    assert "FFMPEG_STALL_SECONDS" in str(caught.value) and caught.value.retryable
    assert max(progress) > 0, "ffmpeg should have made progress before its input stalled"
    assert processes_with(fifo.name) == []


def test_wall_clock_limit_kills_ffmpeg() -> None:
    # A 5 s realtime run against a 1 s limit: a broken limit lets the run finish (no error) within
    # seconds. The stall limit is far away, so only the wall-clock limit can stop it.
    marker = f"mw-timeout-{uuid.uuid4().hex}"
    argv = ["ffmpeg", *realtime_source(5), "-metadata", f"comment={marker}", "-f", "null", "-"]
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(argv, duration=5, limits=RunLimits(timeout_seconds=1, stall_seconds=600))
    assert "FFMPEG_TIMEOUT_SECONDS" in str(caught.value) and caught.value.retryable
    assert processes_with(marker) == []


def test_failure_message_carries_the_stderr_tail(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        run_ffmpeg(["ffmpeg", "-i", f"file:{tmp_path / 'missing.mp4'}", "-f", "null", "-"], duration=1,
                   limits=RunLimits(60, 60))
    assert "exit" in str(caught.value) and not caught.value.retryable
    assert "No such file or directory" in caught.value.stderr_tail


def test_without_the_gate_ffmpeg_reads_local_files_through_a_playlist_named_mp4(tmp_path: Path) -> None:
    secret = make_clip(tmp_path / "someone-elses.mp4", seconds=1, size="160x120")
    playlist = hls_playlist_disguised(tmp_path, secret)
    stolen = tmp_path / "stolen.mp4"
    bare = subprocess.run(["ffmpeg", "-v", "error", "-protocol_whitelist", "file", "-i", f"file:{playlist}",
                           "-c", "copy", str(stolen)], capture_output=True, text=True)
    assert bare.returncode == 0 and stolen.stat().st_size > 1000, "bare ffmpeg should have copied the other file"
    with pytest.raises(MediaError) as caught:
        probe("ffprobe", playlist)
    assert "container is not allowed" in str(caught.value) and "hls" in caught.value.stderr_tail


def test_commands_force_the_probed_demuxer_so_a_playlist_cannot_slip_through(tmp_path: Path) -> None:
    secret = make_clip(tmp_path / "someone-elses.mp4", seconds=1, size="160x120")
    playlist = hls_playlist_disguised(tmp_path, secret)
    argv = video_process_command("ffmpeg", playlist, "mov", ProcessOutputs(mp4=tmp_path / "out.mp4"), duration=1,
                                 has_audio=False, opts=WebVideoOptions(240, 30, "ultrafast"))
    assert argv[argv.index("-f") + 1] in ALLOWED_DEMUXERS and "-protocol_whitelist" in argv
    with pytest.raises(MediaError):
        run_ffmpeg(argv, duration=1, limits=RunLimits(60, 60))
    assert not (tmp_path / "out.mp4").exists() or (tmp_path / "out.mp4").stat().st_size == 0
