"""structlog set-up: JSON lines off a TTY, readable console lines on one."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog

from utils.redaction import redact_all

# The running job's fields (job_id, job_type, attempt), set once per job by token: one
# ContextVar.set, where structlog's bind_contextvars sets one variable per field.
JOB_LOG_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("media_worker_job_log_context", default=None)


def log_context() -> dict[str, Any]:
    """The fields this thread's log lines carry: the running job's and any bound with structlog."""
    return {**structlog.contextvars.get_contextvars(), **(JOB_LOG_CONTEXT.get() or {})}


def _merge_log_context(logger: Any, method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    return {**log_context(), **event_dict}


def _redact_secrets(logger: Any, method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """No configured secret reaches a log line, whatever the message quoted (utils.redaction)."""
    redacted: structlog.typing.EventDict = redact_all(event_dict)
    return redacted


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog once for the process; LOG_FORMAT=auto picks by TTY."""
    # Logs go to stderr so that command output on stdout (job ids, tables) stays clean;
    # the format follows stdout, which is what a supervisor or a pipe captures.
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            _merge_log_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks become text here, so that the secrets in them are redacted too.
            structlog.processors.format_exc_info,
            _redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Configured once, before the first log line; caching spares a bind() on every call.
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("media_worker")
