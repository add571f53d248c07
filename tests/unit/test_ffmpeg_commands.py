"""Golden command lines: the exact argv each builder in utils/ffmpeg_commands.py returns, per job
type and per acceleration path (utils/media_plan.py). A change to any of them shows up here, to be
checked against ffmpeg's documentation and made on purpose.

Every media input is opened as `-f <probed demuxer> -protocol_whitelist file -i file:<path>`."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils.ffmpeg_commands import (
    Clip,
    ProcessOutputs,
    Stills,
    Tonemap,
    WebVideoOptions,
    audio_extract_command,
    clips_command,
    decoder_test_command,
    encoder_test_command,
    hls_command,
    loudnorm_filter_args,
    loudnorm_measure_command,
    sample_h264_command,
    thumbnails_command,
    video_process_command,
)
from utils.media_plan import CPU, NVDEC, NVENC, NVENC_CPU_DECODE, QSV, VAAPI, Accel, hls_ladder

SRC = Path("/w/input")
W = Path("/w")
OPTS = WebVideoOptions(max_height=720, crf=23, preset="veryfast")
LOUDNESS = (-16.0, -1.5, 11.0)  # I, TP, LRA
ACCELS = [CPU, NVDEC, NVENC, NVENC_CPU_DECODE, QSV, VAAPI]
MEASURED = {"input_i": "-27.61", "input_tp": "-4.47", "input_lra": "18.06", "input_thresh": "-39.20",
            "target_offset": "0.58"}


def test_video_process_writes_mp4_poster_stills_and_m4a_from_one_decode() -> None:
    argv = video_process_command("ffmpeg", SRC, "mov", ProcessOutputs(
        mp4=W / "video.mp4", poster=W / "poster.jpg", stills=Stills(W / "thumb_%02d.jpg", [0.5, 1.5], (160, 90)),
        m4a=W / "audio.m4a"), duration=20.0, has_audio=True, opts=OPTS)
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=3[s1][s2][s3];[s1]format=yuv420p[s4];"
        "[s2]setpts=PTS-STARTPTS[s5];[s5]trim=start=2.0[s6];[s6]trim=end_frame=1[s7];[s7]format=yuvj420p[s8];"
        "[s3]select=gt(gte(t\\,0.5)*(isnan(prev_selected_t)+lt(prev_selected_t\\,0.5))+gte(t\\,1.5)*(isnan(prev_selected_t)+lt(prev_selected_t\\,1.5))\\,0)[s9];"
        "[s9]scale=h=90:w=160[s10];[s10]setsar=1[s11];[s11]format=yuvj420p[s12]",
        "-map", "[s4]", "-map", "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "libx264", "-crf", "23",
        "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "veryfast", "-profile:v",
        "high", "/w/video.mp4", "-map", "[s8]", "-atomic_writing", "1", "-q:v", "3", "-vframes", "1", "/w/poster.jpg",
        "-map", "[s12]", "-atomic_writing", "1", "-fps_mode", "vfr", "-frames:v", "2", "-q:v", "3", "/w/thumb_%02d.jpg",
        "-map", "0:a", "-b:a", "128k", "-c:a",
        "aac", "-map_metadata", "-1", "-movflags", "+faststart", "-vn", "/w/audio.m4a", "-hide_banner", "-v", "error",
        "-y",
    ]


def test_video_process_of_a_silent_input_maps_no_audio() -> None:
    argv = video_process_command("ffmpeg", SRC, "matroska", ProcessOutputs(mp4=W / "video.mp4"), duration=2.0,
                                 has_audio=False, opts=OPTS)
    assert argv == [
        "ffmpeg", "-f", "matroska", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]", "-map", "[s2]", "-c:v",
        "libx264", "-crf", "23", "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset",
        "veryfast", "-profile:v", "high", "/w/video.mp4", "-hide_banner", "-v", "error", "-y",
    ]


def test_video_process_tone_maps_hdr_to_bt709_and_tags_it() -> None:
    argv = video_process_command("ffmpeg", SRC, "mov", ProcessOutputs(mp4=W / "video.mp4"), duration=2.0, has_audio=True,
                                 opts=OPTS, tonemap=Tonemap({"color_primaries": "bt2020"}))
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]setparams=color_primaries=bt2020[s1];"
        "[s1]zscale=npl=100:t=linear[s2];[s2]format=gbrpf32le[s3];[s3]zscale=p=bt709[s4];"
        "[s4]tonemap=desat=0:tonemap=hable[s5];[s5]zscale=m=bt709:r=tv:t=bt709[s6];[s6]format=yuv420p[s7];"
        "[s7]split=1[s8];[s8]format=yuv420p[s9]",
        "-map", "[s9]", "-map", "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "libx264", "-color_primaries",
        "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-crf", "23", "-map_chapters", "-1", "-map_metadata",
        "-1", "-movflags", "+faststart", "-preset", "veryfast", "-profile:v", "high", "/w/video.mp4", "-hide_banner",
        "-v", "error", "-y",
    ]


def test_video_thumbnails_writes_the_selected_frames() -> None:
    argv = thumbnails_command("ffmpeg", SRC, "mov", Stills(W / "thumb_%02d.jpg", [1.0, 3.0, 5.0], (160, 90)), sprite=None,
                              grid=(3, 1))
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]select=gt(gte(t\\,1.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,1.0))+gte(t\\,3.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,3.0))+gte(t\\,5.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,5.0))\\,0)[s0];"
        "[s0]scale=h=90:w=160[s1];[s1]setsar=1[s2];[s2]format=yuvj420p[s3]",
        "-map", "[s3]", "-atomic_writing", "1", "-fps_mode", "vfr", "-frames:v", "3", "-q:v", "3", "/w/thumb_%02d.jpg",
        "-hide_banner", "-v",
        "error", "-y",
    ]


def test_video_thumbnails_with_a_sprite_tiles_the_same_frames() -> None:
    argv = thumbnails_command("ffmpeg", SRC, "mov", Stills(W / "thumb_%02d.jpg", [1.0, 3.0, 5.0], (160, 90)),
                              sprite=W / "sprite.jpg", grid=(2, 2))
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]select=gt(gte(t\\,1.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,1.0))+gte(t\\,3.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,3.0))+gte(t\\,5.0)*(isnan(prev_selected_t)+lt(prev_selected_t\\,5.0))\\,0)[s0];"
        "[s0]scale=h=90:w=160[s1];[s1]setsar=1[s2];[s2]format=yuvj420p[s3];[s3]split=2[s4][s5];[s5]tile=2x2[s6]",
        "-map", "[s4]", "-atomic_writing", "1", "-fps_mode", "vfr", "-frames:v", "3", "-q:v", "3", "/w/thumb_%02d.jpg",
        "-map", "[s6]",
        "-frames:v", "1", "-q:v", "3", "/w/sprite.jpg", "-hide_banner", "-v", "error", "-y",
    ]


def test_video_clips_trims_each_clip_from_one_cropped_decode() -> None:
    argv = clips_command("ffmpeg", SRC, "mov", [Clip(W / "clip_1.mp4", 0.5, 1.5), Clip(W / "intro.mp4", 2.0, 3.25)],
                         crop=(134, 240), has_audio=True, opts=OPTS)
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]crop=h=240:w=134[s0];[s0]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s1];[s1]split=2[s2][s3];"
        "[s2]trim=end=1.5:start=0.5[s4];[s4]setpts=PTS-STARTPTS[s5];[s5]format=yuv420p[s6];[0:a]asplit=2[s7][s8];"
        "[s7]atrim=end=1.5:start=0.5[s9];[s9]asetpts=PTS-STARTPTS[s10];[s3]trim=end=3.25:start=2.0[s11];"
        "[s11]setpts=PTS-STARTPTS[s12];[s12]format=yuv420p[s13];[s8]atrim=end=3.25:start=2.0[s14];"
        "[s14]asetpts=PTS-STARTPTS[s15]",
        "-map", "[s6]", "-map", "[s10]", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "libx264", "-crf", "23",
        "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "veryfast", "-profile:v",
        "high", "/w/clip_1.mp4", "-map", "[s13]", "-map", "[s15]", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v",
        "libx264", "-crf", "23", "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset",
        "veryfast", "-profile:v", "high", "/w/intro.mp4", "-hide_banner", "-v", "error", "-y",
    ]


def test_audio_extract_resamples_and_downmixes_to_wav() -> None:
    argv = audio_extract_command("ffmpeg", SRC, "wav", W / "audio.wav", fmt="wav", sample_rate=16000, channels=1)
    assert argv == [
        "ffmpeg", "-f", "wav", "-protocol_whitelist", "file", "-i", "file:/w/input", "-map", "0:a", "-ac", "1", "-ar",
        "16000", "-c:a", "pcm_s16le", "-map_metadata", "-1", "-vn", "/w/audio.wav", "-hide_banner", "-v", "error", "-y",
    ]


def test_audio_extract_to_m4a_is_aac_with_faststart() -> None:
    argv = audio_extract_command("ffmpeg", SRC, "mov", W / "audio.m4a", fmt="m4a", sample_rate=44100, channels=2)
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-map", "0:a", "-ac", "2", "-ar",
        "44100", "-b:a", "128k", "-c:a", "aac", "-map_metadata", "-1", "-movflags", "+faststart", "-vn", "/w/audio.m4a",
        "-hide_banner", "-v", "error", "-y",
    ]


def test_audio_extract_loudnorm_first_pass_measures_and_writes_nothing() -> None:
    argv = loudnorm_measure_command("ffmpeg", SRC, "mov", LOUDNESS)
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:a]loudnorm=I=-16.0:LRA=11.0:TP=-1.5:print_format=json[s0]", "-map", "[s0]", "-f", "null", "-",
        "-hide_banner", "-v", "info",
    ]


def test_audio_extract_loudnorm_second_pass_applies_the_measured_values_linearly() -> None:
    argv = audio_extract_command("ffmpeg", SRC, "mov", W / "audio.flac", fmt="flac", sample_rate=48000, channels=2,
                                 loudnorm=loudnorm_filter_args(LOUDNESS, MEASURED))
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:a]loudnorm=I=-16.0:LRA=11.0:TP=-1.5:linear=true:measured_I=-27.61:measured_LRA=18.06:measured_TP=-4.47:measured_thresh=-39.20:offset=0.58:print_format=summary[s0]",
        "-map", "[s0]", "-ac", "2", "-ar", "48000", "-c:a", "flac", "-map_metadata", "-1", "-vn", "/w/audio.flac",
        "-hide_banner", "-v", "error", "-y",
    ]


def test_video_hls_encodes_every_rung_from_one_decode_with_aligned_keyframes() -> None:
    argv = hls_command("ffmpeg", SRC, "mov", W / "hls", hls_ladder(1280, 720, [360, 720, 1080]), segment_seconds=4,
                       frame_rate=25, has_audio=True, preset="veryfast")
    assert argv == [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]split=2[s0][s1];[s0]scale=h=360:w=640[s2];[s2]setsar=1[s3];[s3]format=yuv420p[s4];[0:a]asplit=2[s5][s6];"
        "[s1]scale=h=720:w=1280[s7];[s7]setsar=1[s8];[s8]format=yuv420p[s9]",
        "-map", "[s4]", "-map", "[s5]", "-map", "[s9]", "-map", "[s6]", "-f", "hls", "-ac", "2", "-b:a", "128k",
        "-b:v:0", "800k", "-b:v:1", "2800k", "-bufsize:v:0", "1200k", "-bufsize:v:1", "4200k", "-c:a", "aac", "-c:v:0",
        "libx264", "-c:v:1", "libx264", "-force_key_frames", "expr:gte(t,n_forced*4)", "-g", "100", "-hls_flags",
        "independent_segments+temp_file", "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts",
        "-hls_time", "4", "-keyint_min", "100", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0",
        "856k", "-maxrate:v:1", "2996k", "-preset:v:0", "veryfast", "-preset:v:1", "veryfast", "-profile:v:0", "high",
        "-profile:v:1", "high", "-sc_threshold", "0", "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:720p",
        "/w/hls/%v/index.m3u8", "-hide_banner", "-v", "error", "-y",
    ]


def test_the_decoder_test_downloads_frames_from_the_gpu() -> None:
    argv = decoder_test_command("ffmpeg", "cuda", W / "sample.mp4")
    assert argv == [
        "ffmpeg", "-hwaccel", "cuda", "-hwaccel_output_format", "cuda", "-i", "file:/w/sample.mp4", "-filter_complex",
        "[0:v]hwdownload[s0];[s0]format=nv12[s1]", "-map", "[s1]", "-f", "null", "-", "-hide_banner", "-v", "error",
        "-y",
    ]


def test_the_decoder_test_sample_is_one_h264_frame() -> None:
    argv = sample_h264_command("ffmpeg", W / "sample.mp4")
    assert argv == [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0]format=yuv420p[s0]", "-map",
        "[s0]", "-vcodec", "libx264", "-vframes", "1", "/w/sample.mp4", "-hide_banner", "-v", "error", "-y",
    ]


# video.process's web MP4 on each acceleration path: decoder, encoder, quality options, frame upload.
PROCESS_BY_ACCEL: dict[str, list[str]] = {
    CPU.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]", "-map", "[s2]", "-map",
        "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "libx264", "-crf", "23", "-map_chapters", "-1",
        "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "veryfast", "-profile:v", "high", "/w/video.mp4",
        "-hide_banner", "-v", "error", "-y",
    ],
    NVDEC.name: [
        "ffmpeg", "-f", "mov", "-hwaccel", "cuda", "-protocol_whitelist", "file", "-i", "file:/w/input",
        "-filter_complex", "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]",
        "-map", "[s2]", "-map", "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "libx264", "-crf", "23",
        "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "veryfast", "-profile:v",
        "high", "/w/video.mp4", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC.name: [
        "ffmpeg", "-f", "mov", "-hwaccel", "cuda", "-protocol_whitelist", "file", "-i", "file:/w/input",
        "-filter_complex", "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]",
        "-map", "[s2]", "-map", "0:a", "-ac", "2", "-b:a", "128k", "-b:v", "0", "-c:a", "aac", "-c:v", "h264_nvenc",
        "-cq", "23", "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "p4",
        "-profile:v", "high", "-rc", "vbr", "/w/video.mp4", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC_CPU_DECODE.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]", "-map", "[s2]", "-map",
        "0:a", "-ac", "2", "-b:a", "128k", "-b:v", "0", "-c:a", "aac", "-c:v", "h264_nvenc", "-cq", "23",
        "-map_chapters", "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "p4", "-profile:v", "high",
        "-rc", "vbr", "/w/video.mp4", "-hide_banner", "-v", "error", "-y",
    ],
    QSV.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=yuv420p[s2]", "-map", "[s2]", "-map",
        "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "h264_qsv", "-global_quality", "23", "-map_chapters",
        "-1", "-map_metadata", "-1", "-movflags", "+faststart", "-preset", "medium", "-profile:v", "high",
        "/w/video.mp4", "-hide_banner", "-v", "error", "-y",
    ],
    VAAPI.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]scale=h=trunc(min(ih\\,720)/2)*2:w=-2[s0];[s0]split=1[s1];[s1]format=nv12[s2];[s2]hwupload[s3]", "-map",
        "[s3]", "-map", "0:a", "-ac", "2", "-b:a", "128k", "-c:a", "aac", "-c:v", "h264_vaapi", "-map_chapters", "-1",
        "-map_metadata", "-1", "-movflags", "+faststart", "-profile:v", "high", "-qp", "23", "/w/video.mp4",
        "-hide_banner", "-v", "error", "-vaapi_device", "/dev/dri/renderD128", "-y",
    ],
}


# A one-rung video.hls ladder on each path: each encoder's own way to keep keyframes on segment boundaries.
HLS_BY_ACCEL: dict[str, list[str]] = {
    CPU.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3]", "-map", "[s3]", "-f",
        "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac", "-c:v:0", "libx264",
        "-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "60", "-hls_flags", "independent_segments+temp_file",
        "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts", "-hls_time", "2", "-keyint_min",
        "60", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0", "856k", "-preset:v:0", "veryfast",
        "-profile:v:0", "high", "-sc_threshold", "0", "-var_stream_map", "v:0,name:360p", "/w/hls/%v/index.m3u8",
        "-hide_banner", "-v", "error", "-y",
    ],
    NVDEC.name: [
        "ffmpeg", "-f", "mov", "-hwaccel", "cuda", "-protocol_whitelist", "file", "-i", "file:/w/input",
        "-filter_complex", "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3]", "-map",
        "[s3]", "-f", "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac",
        "-c:v:0", "libx264", "-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "60", "-hls_flags",
        "independent_segments+temp_file", "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts",
        "-hls_time", "2", "-keyint_min", "60", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0",
        "856k", "-preset:v:0", "veryfast", "-profile:v:0", "high", "-sc_threshold", "0", "-var_stream_map",
        "v:0,name:360p", "/w/hls/%v/index.m3u8", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC.name: [
        "ffmpeg", "-f", "mov", "-hwaccel", "cuda", "-protocol_whitelist", "file", "-i", "file:/w/input",
        "-filter_complex", "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3]", "-map",
        "[s3]", "-f", "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac",
        "-c:v:0", "h264_nvenc", "-force_key_frames", "expr:gte(t,n_forced*2)", "-forced-idr", "1", "-g", "60",
        "-hls_flags", "independent_segments+temp_file", "-hls_playlist_type", "vod", "-hls_segment_filename",
        "/w/hls/%v/seg_%03d.ts", "-hls_time", "2", "-keyint_min", "60", "-map_metadata", "-1", "-master_pl_name",
        "master.m3u8", "-maxrate:v:0", "856k", "-no-scenecut", "1", "-preset:v:0", "p4", "-profile:v:0", "high",
        "-var_stream_map", "v:0,name:360p", "/w/hls/%v/index.m3u8", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC_CPU_DECODE.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3]", "-map", "[s3]", "-f",
        "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac", "-c:v:0",
        "h264_nvenc", "-force_key_frames", "expr:gte(t,n_forced*2)", "-forced-idr", "1", "-g", "60", "-hls_flags",
        "independent_segments+temp_file", "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts",
        "-hls_time", "2", "-keyint_min", "60", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0",
        "856k", "-no-scenecut", "1", "-preset:v:0", "p4", "-profile:v:0", "high", "-var_stream_map", "v:0,name:360p",
        "/w/hls/%v/index.m3u8", "-hide_banner", "-v", "error", "-y",
    ],
    QSV.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=yuv420p[s3]", "-map", "[s3]", "-f",
        "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac", "-c:v:0",
        "h264_qsv", "-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "60", "-hls_flags",
        "independent_segments+temp_file",
        "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts", "-hls_time", "2", "-keyint_min",
        "60", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0", "856k", "-preset:v:0", "medium",
        "-profile:v:0", "high", "-var_stream_map", "v:0,name:360p", "/w/hls/%v/index.m3u8", "-hide_banner", "-v",
        "error", "-y",
    ],
    VAAPI.name: [
        "ffmpeg", "-f", "mov", "-protocol_whitelist", "file", "-i", "file:/w/input", "-filter_complex",
        "[0:v]split=1[s0];[s0]scale=h=360:w=640[s1];[s1]setsar=1[s2];[s2]format=nv12[s3];[s3]hwupload[s4]", "-map",
        "[s4]", "-f", "hls", "-ac", "2", "-b:a", "128k", "-b:v:0", "800k", "-bufsize:v:0", "1200k", "-c:a", "aac",
        "-c:v:0", "h264_vaapi", "-force_key_frames", "expr:gte(t,n_forced*2)", "-g", "60", "-hls_flags",
        "independent_segments+temp_file", "-hls_playlist_type", "vod", "-hls_segment_filename", "/w/hls/%v/seg_%03d.ts",
        "-hls_time", "2", "-keyint_min", "60", "-map_metadata", "-1", "-master_pl_name", "master.m3u8", "-maxrate:v:0",
        "856k", "-profile:v:0", "high", "-var_stream_map", "v:0,name:360p", "/w/hls/%v/index.m3u8", "-hide_banner", "-v",
        "error", "-vaapi_device", "/dev/dri/renderD128", "-y",
    ],
}


# The one-frame encode that proves an encoder works here (FFMPEG_HWACCEL=auto).
ENCODER_TEST_BY_ACCEL: dict[str, list[str]] = {
    CPU.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0:v]format=yuv420p[s0]",
        "-map", "[s0]", "-f", "null", "-vcodec", "libx264", "-vframes", "1", "-", "-hide_banner", "-v", "error", "-y",
    ],
    NVDEC.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0:v]format=yuv420p[s0]",
        "-map", "[s0]", "-f", "null", "-vcodec", "libx264", "-vframes", "1", "-", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0:v]format=yuv420p[s0]",
        "-map", "[s0]", "-f", "null", "-vcodec", "h264_nvenc", "-vframes", "1", "-", "-hide_banner", "-v", "error", "-y",
    ],
    NVENC_CPU_DECODE.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0:v]format=yuv420p[s0]",
        "-map", "[s0]", "-f", "null", "-vcodec", "h264_nvenc", "-vframes", "1", "-", "-hide_banner", "-v", "error", "-y",
    ],
    QSV.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex", "[0:v]format=yuv420p[s0]",
        "-map", "[s0]", "-f", "null", "-vcodec", "h264_qsv", "-vframes", "1", "-", "-hide_banner", "-v", "error", "-y",
    ],
    VAAPI.name: [
        "ffmpeg", "-f", "lavfi", "-i", "color=c=black:s=256x256:d=1", "-filter_complex",
        "[0:v]format=nv12[s0];[s0]hwupload[s1]", "-map", "[s1]", "-f", "null", "-vcodec", "h264_vaapi", "-vframes", "1",
        "-", "-hide_banner", "-v", "error", "-vaapi_device", "/dev/dri/renderD128", "-y",
    ],
}


@pytest.mark.parametrize("accel", ACCELS, ids=lambda a: a.name)
def test_video_process_on_each_acceleration_path(accel: Accel) -> None:
    argv = video_process_command("ffmpeg", SRC, "mov", ProcessOutputs(mp4=W / "video.mp4"), duration=2.0, has_audio=True,
                                 opts=OPTS, accel=accel)
    assert argv == PROCESS_BY_ACCEL[accel.name]


@pytest.mark.parametrize("accel", ACCELS, ids=lambda a: a.name)
def test_video_hls_on_each_acceleration_path(accel: Accel) -> None:
    argv = hls_command("ffmpeg", SRC, "mov", W / "hls", hls_ladder(640, 360, [360]), segment_seconds=2, frame_rate=30,
                       has_audio=False, preset="veryfast", accel=accel)
    assert argv == HLS_BY_ACCEL[accel.name]


@pytest.mark.parametrize("accel", ACCELS, ids=lambda a: a.name)
def test_the_encoder_test_encodes_one_frame_as_jobs_would(accel: Accel) -> None:
    assert encoder_test_command("ffmpeg", accel) == ENCODER_TEST_BY_ACCEL[accel.name]
