from utils.ffmpeg import parse_probe
from utils.media_plan import (
    centre_crop,
    fit_height,
    fit_width,
    hls_ladder,
    parse_loudnorm,
    sample_times,
    select_times_expr,
    sprite_grid,
    storyboard_vtt,
)
from utils.verify import Expect, problems


def test_sizes_are_even_never_upscaled_and_match_ffmpeg_scale() -> None:
    assert fit_height(321, 241, 1080) == (320, 240)
    assert fit_height(1920, 1080, 720) == (1280, 720)
    assert fit_height(3840, 2160, 1081) == (1920, 1080)
    assert fit_width(321, 241, 160) == (160, 120)
    assert fit_width(100, 50, 320) == (100, 50)


def test_centre_crop_fits_inside_with_the_aspect() -> None:
    assert centre_crop(1920, 1080, (9, 16)) == (606, 1080)
    assert centre_crop(320, 240, (9, 16)) == (134, 240)
    assert centre_crop(1080, 1920, (1, 1)) == (1080, 1080)


def test_sample_times_are_evenly_spaced_and_stay_before_the_last_frame() -> None:
    assert sample_times(10, 4, 25) == [1.25, 3.75, 6.25, 8.75]
    assert sample_times(0.04, 3, 25) == [0.0, 0.0, 0.0]  # a one-frame video
    expr = select_times_expr([0.0, 0.0, 1.5])
    assert expr.count("gte(t,") == 2 and expr.startswith("gt(")


def test_storyboard_cues_point_at_their_tiles() -> None:
    assert sprite_grid(7, 3) == (3, 3) and sprite_grid(2, 5) == (2, 1)
    vtt = storyboard_vtt(4.0, 4, (80, 60), 3, "sprite.jpg").splitlines()
    assert vtt[:4] == ["WEBVTT", "", "00:00:00.000 --> 00:00:01.000", "sprite.jpg#xywh=0,0,80,60"]
    assert "00:00:03.000 --> 00:00:04.000" in vtt and vtt[-1] == "sprite.jpg#xywh=0,60,80,60"


def test_hls_ladder_drops_rungs_above_the_source_and_keeps_one() -> None:
    assert [r.name for r in hls_ladder(1920, 1080, [1080, 360, 720, 2160])] == ["360p", "720p", "1080p"]
    assert [(r.width, r.height) for r in hls_ladder(1280, 720, [1080, 720])] == [(1280, 720)]
    small = hls_ladder(320, 240, [360, 720])
    assert [(r.name, r.height) for r in small] == [("240p", 240)]


def test_parse_loudnorm_reads_the_json_block_and_refuses_silence() -> None:
    stderr = ('[Parsed_loudnorm_0 @ 0x1]\n{\n\t"input_i" : "-23.51",\n\t"input_tp" : "-5.00",\n\t"input_lra" : "0.00",'
              '\n\t"input_thresh" : "-33.51",\n\t"target_offset" : "0.01"\n}\nsize=N/A')
    assert parse_loudnorm(stderr) == {"input_i": "-23.51", "input_tp": "-5.00", "input_lra": "0.00",
                                      "input_thresh": "-33.51", "target_offset": "0.01"}
    assert parse_loudnorm(stderr.replace('"-23.51"', '"-inf"')) is None
    assert parse_loudnorm("no json here") is None


def test_verification_lists_every_mismatch() -> None:
    found = parse_probe({"format": {"format_name": "mov,mp4", "duration": "1.0"},
                         "streams": [{"codec_type": "video", "codec_name": "hevc", "width": 320, "height": 240,
                                      "pix_fmt": "yuv420p10le", "side_data_list": [{"rotation": 90}]}]})
    issues = problems(found, Expect(video_codec="h264", pix_fmt="yuv420p", size=(320, 240), audio_codec="aac",
                                    duration=3.0, tolerance=0.5))
    assert issues == ["expected h264 video, found hevc", "expected pixel format yuv420p, found yuv420p10le",
                      "video still carries a 90 degree rotation", "expected aac audio, found none",
                      "expected 3.00s (±0.50), found 1.00s"]
    assert problems(found, Expect(video_codec="hevc", size=(320, 240), duration=1.2)) == [
        "video still carries a 90 degree rotation"]
