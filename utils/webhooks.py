"""Signed webhooks after the Standard Webhooks spec (https://www.standardwebhooks.com).

Each request carries `webhook-id` (a stable event id: the same on every retry and every
redelivery, so receivers can dedupe), `webhook-timestamp` (integer Unix seconds) and
`webhook-signature` ("v1,<base64 HMAC-SHA256 of id.timestamp.body>").

Every attempt is signed afresh with the current time, as the spec allows: receivers reject
timestamps older than a few minutes, and a late retry must still verify. The body and the
id never change between attempts.

`deliver` never raises for a failed delivery; it returns a `DeliveryResult` saying why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import requests

from utils.backoff import backoff_delay, retry_after_seconds

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
EVENT_TYPE_PREFIX = "media_job."
MAX_DELAY_SECONDS = 60.0
"""Cap on one wait between attempts, Retry-After included, so a receiver cannot park a worker."""
REASON_BODY_CHARS = 200

Verdict = Literal["delivered", "retry", "give_up"]


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended: delivered or not, after how many requests, and why."""

    delivered: bool
    event_id: str
    attempts: int
    status: int | None
    reason: str


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one POST."""

    verdict: Verdict
    status: int | None
    reason: str
    retry_after: float | None = None


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of a "whsec_..." secret, else the UTF-8 bytes; raises ValueError."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except ValueError as exc:
            raise ValueError("webhook secret starts with whsec_ but the rest is not base64") from exc
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: "v1,<base64 HMAC-SHA256 of f'{msg_id}.{timestamp}.{body}'>"."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


def event_id(job_id: str, status: str, finished_at_iso: str) -> str:
    """A deterministic id for one job ending: the same inputs always give the same "evt_<hex>"."""
    digest = hashlib.sha256(f"{job_id}\n{status}\n{finished_at_iso}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def build_event(*, job_id: str, job_type: str, status: str, user_id: str | None, result: Mapping[str, Any] | None,
                error: str | None, attempts: int, finished_at_iso: str) -> dict[str, Any]:
    """The JSON payload for a job that ended (completed, failed or cancelled)."""
    return {
        "type": EVENT_TYPE_PREFIX + status,
        "timestamp": finished_at_iso,
        "data": {
            "id": job_id, "type": job_type, "status": status, "user_id": user_id,
            "result": dict(result) if result is not None else None, "error": error, "attempts": attempts,
        },
    }


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON with sorted keys, so the same event is the same bytes."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, default=str).encode("utf-8")


def deliver(url: str, secret: str, event: Mapping[str, Any], *, attempts: int = 5, base_delay: float = 1.0,
            timeout: float = 10, session: requests.Session | None = None,
            sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """POST a build_event() payload, retrying connection errors, timeouts, 429 and 5xx.

    Never raises for a failed delivery; only a malformed "whsec_" secret raises ValueError.
    """
    data = event["data"]
    msg_id = event_id(str(data["id"]), str(data["status"]), str(event["timestamp"]))
    body = encode_event(event)
    tries = 0
    with _http(session) as http:
        while True:
            tries += 1
            outcome = _post_once(http, url, secret, msg_id, body, timeout)
            if outcome.verdict != "retry" or tries >= attempts:
                return DeliveryResult(outcome.verdict == "delivered", msg_id, tries, outcome.status, outcome.reason)
            sleep(next_delay(tries, base_delay, outcome.retry_after))


def next_delay(attempt: int, base_delay: float, retry_after: float | None) -> float:
    """Seconds to wait after failed attempt number `attempt`: Retry-After if given, else jittered backoff; capped."""
    if retry_after is not None:
        return min(retry_after, MAX_DELAY_SECONDS)
    return backoff_delay(attempt, base_delay, MAX_DELAY_SECONDS)


def classify(status: int) -> Verdict:
    """2xx is delivered; 429 and 5xx may pass on a retry; anything else (4xx, 3xx) will not."""
    if 200 <= status < 300:
        return "delivered"
    if status == 429 or status >= 500:
        return "retry"
    return "give_up"


def _post_once(http: requests.Session, url: str, secret: str, msg_id: str, body: bytes, timeout: float) -> _Attempt:
    """One signed POST, translated into a verdict; request errors never escape."""
    headers = signed_headers(secret, msg_id, int(time.time()), body)
    try:
        # Redirects are not followed: requests would turn the POST into a GET and drop the body.
        with http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as resp:
            verdict = classify(resp.status_code)
            reason = "delivered" if verdict == "delivered" else f"HTTP {resp.status_code}: {resp.text[:REASON_BODY_CHARS]}"
            return _Attempt(verdict, resp.status_code, reason, retry_after_seconds(resp.headers.get("Retry-After")))
    except (requests.ConnectionError, requests.Timeout) as exc:
        return _Attempt("retry", None, f"{type(exc).__name__}: {exc}")
    except requests.RequestException as exc:  # a bad URL and the like: retrying cannot help
        return _Attempt("give_up", None, f"{type(exc).__name__}: {exc}")


@contextmanager
def _http(session: requests.Session | None) -> Iterator[requests.Session]:
    """The caller's session, or a fresh one closed afterwards."""
    if session is not None:
        yield session
        return
    with requests.Session() as own:
        yield own
