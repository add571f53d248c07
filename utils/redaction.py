"""Keep configured secrets out of every message the worker writes: log lines, job errors,
health answers, doctor output.

Any message may carry text from outside (a server that echoes our request headers in its error
body, a driver that quotes its URL), so writers pass what they write through `redact` rather
than trusting every source to leave secrets out. The process registers its secrets once, when
it reads its configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Shorter values would match ordinary text; no real key, password or signing secret is this short.
MIN_SECRET_LENGTH = 4
REPLACEMENT = "***"

_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str | None]) -> None:
    """Add these values to the ones every message is cleaned of (longest first, so that a secret
    containing another is replaced whole)."""
    global _secrets
    found = {v for v in (*_secrets, *values) if v and len(v) >= MIN_SECRET_LENGTH}
    _secrets = tuple(sorted(found, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REPLACEMENT)
    return text


def redact_all(value: Any) -> Any:
    """`value` with every string in it redacted, through dicts, lists and tuples."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(v) for v in value)
    return value
