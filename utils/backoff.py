"""Retry delays: exponential, capped, with jitter. Pure functions, no sleeping here."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): base * 2**(attempt-1), capped, jittered.

    Jitter takes the delay uniformly from [50 %, 100 %] of the nominal value, so a crowd of
    workers that failed together does not retry in lockstep, yet the schedule keeps growing.
    """
    nominal = min(cap, base * (2 ** max(attempt - 1, 0)))
    return nominal * (0.5 + 0.5 * (rng or random).random())


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds from an HTTP Retry-After header given in seconds; None if absent or a date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
