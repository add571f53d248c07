from utils.backoff import backoff_delay, retry_after_seconds
from utils.ffmpeg import parse_probe
from utils.ffmpeg_supervisor import _Progress, parse_out_time
from utils.verify import Expect, problems


def test_out_time_tolerates_na_and_negative() -> None:
    assert parse_out_time({"out_time_us": "N/A"}) is None
    assert parse_out_time({"out_time_us": "-9223372036854775807"}) is None
    assert parse_out_time({"out_time_us": "2500000"}) == 2.5
    assert parse_out_time({"out_time_ms": "1000000"}) == 1.0


def test_progress_blocks_move_forward_only() -> None:
    p = _Progress()
    for line in ["frame=10", "out_time_us=N/A", "progress=continue"]:
        p.feed(line)
    assert p.out_time == 0
    for line in ["frame=20", "out_time_us=1000000", "progress=continue"]:
        p.feed(line)
    assert p.out_time == 1.0
    # an identical block is not progress: the stall watchdog must see it as standing still
    assert not any(p.feed(line) for line in ["frame=20", "out_time_us=1000000", "progress=continue"])


def test_parse_probe_applies_rotation_to_display_size() -> None:
    data = {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "3.0", "size": "100"},
            "streams": [{"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
                         "side_data_list": [{"rotation": -90}], "avg_frame_rate": "30/1"},
                        {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2}]}
    result = parse_probe(data)
    assert result.demuxer == "mov"
    assert result.video is not None and result.video.display_size == (1080, 1920)
    assert result.to_metadata()["video"]["width"] == 1080


def test_hdr_transfer_is_named_and_an_hdr_tagged_output_fails_verification() -> None:
    def probed(transfer: str | None) -> dict[str, object]:
        stream = {"codec_type": "video", "codec_name": "h264", "width": 64, "height": 48, "pix_fmt": "yuv420p"}
        return {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "1.0", "size": "10"},
                "streams": [{**stream, "color_transfer": transfer} if transfer else stream]}

    hlg, pq, sdr = (parse_probe(probed(t)) for t in ("arib-std-b67", "smpte2084", "bt709"))
    assert hlg.video is not None and hlg.video.hdr == "HLG" and hlg.to_metadata()["video"]["hdr"] == "HLG"
    assert pq.video is not None and pq.video.hdr == "PQ"
    assert sdr.video is not None and sdr.video.hdr is None
    assert problems(pq, Expect(video_codec="h264")) == ["video is still tagged PQ (HDR): it was not tone-mapped to SDR"]
    assert problems(sdr, Expect(video_codec="h264")) == []


def test_backoff_grows_caps_and_jitters() -> None:
    delays = [backoff_delay(n, 1.0, 8.0) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(d <= 8.0 for d in delays)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
