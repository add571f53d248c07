"""crf: 0 is refused as a payload error that says why, in every payload with a crf field (issue 14 §6)."""

from __future__ import annotations

import pytest

from handlers import load_handlers
from handlers.base import Handler, InputPayload
from handlers.errors import InvalidPayload

WITH_CRF = [h for h in load_handlers().values() if "crf" in h.payload_model.model_fields]
INPUT = {"input": {"bucket": "media-uploads", "path": "u/clip.mp4"}}


def payload_with(handler: Handler, crf: object) -> dict[str, object]:
    return {**(INPUT if issubclass(handler.payload_model, InputPayload) else {}), "crf": crf}


def test_video_process_is_among_the_payloads_with_a_crf() -> None:
    assert "video.process" in [h.name for h in WITH_CRF]


@pytest.mark.parametrize("handler", WITH_CRF, ids=lambda h: h.name)
@pytest.mark.parametrize("crf", [0, "0"])
def test_crf_0_is_refused_because_high_profile_has_no_lossless_mode(handler: Handler, crf: object) -> None:
    with pytest.raises(InvalidPayload) as info:
        handler.parse_payload(payload_with(handler, crf))
    message = str(info.value)
    assert "payload.crf: 0 means lossless" in message
    assert "High profile" in message and "use 1 or more" in message


@pytest.mark.parametrize("handler", WITH_CRF, ids=lambda h: h.name)
def test_crf_from_1_to_51_is_accepted_and_outside_it_refused(handler: Handler) -> None:
    assert handler.parse_payload(payload_with(handler, 1)).crf == 1  # type: ignore[attr-defined]
    assert handler.parse_payload(payload_with(handler, 51)).crf == 51  # type: ignore[attr-defined]
    with pytest.raises(InvalidPayload, match="never negative"):
        handler.parse_payload(payload_with(handler, -1))
    with pytest.raises(InvalidPayload, match="less than or equal to 51"):
        handler.parse_payload(payload_with(handler, 52))


@pytest.mark.parametrize("handler", WITH_CRF, ids=lambda h: h.name)
def test_the_payload_schema_says_the_lowest_crf_is_1(handler: Handler) -> None:
    schema = handler.payload_model.model_json_schema()["properties"]["crf"]
    assert {"minimum": 1, "maximum": 51}.items() <= schema["anyOf"][0].items()
