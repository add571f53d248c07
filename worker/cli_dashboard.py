"""`python worker.py dashboard`: serve the operator dashboard (worker/dashboard/) until SIGINT/SIGTERM.

It runs as its own process, beside the workers, on the same settings: one command to start, stop and
put behind a proxy, and a dashboard that stays up while workers are redeployed (docs/dashboard.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from utils.redaction import register_secrets
from worker.config import Settings
from worker.db import apply_migrations, check_migrations_current
from worker.errors import ConfigError
from worker.logs import log
from worker.runtime import database_url

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_TOKEN_CHARS = 16


def add_dashboard_parser(sub: Any) -> None:
    sub.add_parser("dashboard", help="serve the operator dashboard on DASHBOARD_HOST:DASHBOARD_PORT "
                                     "(queue, jobs, workers, outputs; retry and cancel)")


def access_refusal(settings: Settings) -> ConfigError | None:
    """Why the dashboard must not start with these settings: off loopback without a token, or a short token."""
    token = settings.dashboard_token
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        return ConfigError([f"DASHBOARD_TOKEN: must be at least {MIN_TOKEN_CHARS} characters "
                            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"])
    if settings.dashboard_host not in LOOPBACK_HOSTS and not token:
        return ConfigError([f"DASHBOARD_HOST={settings.dashboard_host}: the dashboard retries and cancels jobs and "
                            "shows every job's payload, so it binds to an address other than 127.0.0.1, localhost "
                            "or ::1 only with DASHBOARD_TOKEN set (see docs/dashboard.md)"])
    return None


def cmd_dashboard(settings: Settings, args: argparse.Namespace) -> int:
    """Check the access settings and the database, then serve; exit 2 (ConfigError) when refused."""
    refusal = access_refusal(settings)
    if refusal is not None:
        raise refusal
    register_secrets([settings.dashboard_token or ""])
    url = database_url(settings)
    if settings.database_url:
        check_migrations_current(url)
    else:
        apply_migrations(url)
    from worker.dashboard.app import serve  # the web stack loads only for this command

    log.info("dashboard_started", host=settings.dashboard_host, port=settings.dashboard_port,
             token_required=bool(settings.dashboard_token))
    serve(settings, url)
    return 0
