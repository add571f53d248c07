"""Webhook signing and delivery against a real local HTTP receiver.

The receiver (tests/support/webhook_receiver.py) verifies signatures with its own
implementation of the Standard Webhooks spec, sharing no code with utils/webhooks.py.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest

from tests.support.webhook_receiver import SECRET, Receiver, spec_verify
from utils import webhooks

FINISHED = "2026-11-21T10:00:00.123456+00:00"


def _event(status: str = "completed") -> dict[str, object]:
    return webhooks.build_event(
        job_id="6f1c0a9e-0000-4000-8000-000000000001", job_type="video.process", status=status,
        user_id="8d2b0000-0000-4000-8000-000000000002",
        result={"outputs": [{"kind": "video", "path": "u/j/video.mp4"}]} if status == "completed" else None,
        error=None if status == "completed" else "input is not media", attempts=2, finished_at_iso=FINISHED)


def _deliver(receiver: Receiver, secret: str = SECRET, **kwargs: object) -> tuple[webhooks.DeliveryResult, list[float]]:
    sleeps: list[float] = []
    result = webhooks.deliver(receiver.url, secret, _event(), sleep=sleeps.append, **kwargs)  # type: ignore[arg-type]
    return result, sleeps


def test_receiver_verifies_signature_and_headers(receiver: Receiver) -> None:
    result, sleeps = _deliver(receiver)
    assert result.delivered and result.attempts == 1 and result.status == 200 and sleeps == []
    (req,) = receiver.requests
    assert spec_verify(SECRET, req.headers, req.body)
    assert req.headers["content-type"] == "application/json"
    assert req.headers["webhook-id"] == result.event_id
    timestamp = req.headers["webhook-timestamp"]
    assert timestamp.isdigit() and abs(int(timestamp) - time.time()) < 86400  # whole seconds, not ms
    assert json.loads(req.body) == _event()


def test_raw_secret_is_used_as_utf8_bytes(receiver: Receiver) -> None:
    result, _ = _deliver(receiver, secret="plain-sécret")
    assert result.delivered
    (req,) = receiver.requests
    assert spec_verify("plain-sécret", req.headers, req.body)
    assert not spec_verify(SECRET, req.headers, req.body)


def test_tampered_body_or_wrong_secret_fails_verification(receiver: Receiver) -> None:
    _deliver(receiver)
    (req,) = receiver.requests
    tampered = req.body.replace(b"completed", b"cancelled")
    assert tampered != req.body
    assert not spec_verify(SECRET, req.headers, tampered)
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    assert not spec_verify(other, req.headers, req.body)


def test_5xx_is_retried_with_the_same_webhook_id(receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 200]
    result, sleeps = _deliver(receiver, base_delay=1.0)
    assert result.delivered and result.attempts == 3 and result.status == 200
    assert len(receiver.requests) == 3 and len(sleeps) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {result.event_id}
    assert {r.body for r in receiver.requests} == {receiver.requests[0].body}
    assert all(spec_verify(SECRET, r.headers, r.body) for r in receiver.requests)
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # jittered exponential backoff


def test_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400, 200]
    result, sleeps = _deliver(receiver)
    assert not result.delivered and result.attempts == 1 and result.status == 400
    assert "nope: bad request" in result.reason
    assert len(receiver.requests) == 1 and sleeps == []


def test_429_honours_retry_after(receiver: Receiver) -> None:
    receiver.statuses = [429, 204]
    receiver.extra_headers = {"Retry-After": "7"}
    result, sleeps = _deliver(receiver)
    assert result.delivered and result.attempts == 2 and sleeps == [7.0]


def test_gives_up_after_the_last_attempt_without_raising(receiver: Receiver) -> None:
    receiver.statuses = [503]
    result, sleeps = _deliver(receiver, attempts=3)
    assert not result.delivered and result.attempts == 3 and result.status == 503
    assert len(receiver.requests) == 3 and len(sleeps) == 2


def test_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.statuses = [302]
    receiver.extra_headers = {"Location": "/elsewhere"}
    result, _ = _deliver(receiver)
    assert not result.delivered and result.status == 302 and len(receiver.requests) == 1


def test_read_timeout_is_retried(receiver: Receiver) -> None:
    receiver.stall = threading.Event()
    result, sleeps = _deliver(receiver, attempts=2, timeout=0.2)
    assert not result.delivered and result.attempts == 2 and result.status is None
    assert "Timeout" in result.reason and len(sleeps) == 1 and len(receiver.requests) == 2


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    result = webhooks.deliver(f"http://127.0.0.1:{port}/", SECRET, _event(), attempts=3, sleep=sleeps.append)
    assert not result.delivered and result.attempts == 3 and result.status is None
    assert "ConnectionError" in result.reason and len(sleeps) == 2


def test_event_id_is_stable_and_distinguishes_endings() -> None:
    job = "6f1c0a9e-0000-4000-8000-000000000001"
    first = webhooks.event_id(job, "completed", FINISHED)
    assert first == webhooks.event_id(job, "completed", FINISHED)
    assert first.startswith("evt_")
    assert first != webhooks.event_id(job, "failed", FINISHED)
    assert first != webhooks.event_id(job, "completed", "2026-11-21T10:00:01+00:00")


def test_build_event_shape() -> None:
    event = _event("failed")
    assert event["type"] == "media_job.failed" and event["timestamp"] == FINISHED
    assert event["data"] == {"id": "6f1c0a9e-0000-4000-8000-000000000001", "type": "video.process",
                             "status": "failed", "user_id": "8d2b0000-0000-4000-8000-000000000002",
                             "result": None, "error": "input is not media", "attempts": 2}


def test_sign_matches_the_spec_example() -> None:
    # The example from the standard-webhooks reference libraries' test suites.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_malformed_whsec_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="not base64"):
        webhooks.sign("whsec_!!!", "msg", 1, b"{}")
