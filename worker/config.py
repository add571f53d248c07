"""Reading the configuration: the environment plus an optional `.env` file (the environment wins).

`load_settings()` validates every variable and raises one `ConfigError` listing all bad ones, each
saying where its value came from and what it must be; then the checks across variables, among
them the refusal to fall back to the embedded defaults when half a deployment is configured.
The variables themselves are defined in worker/settings.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

from pydantic import ValidationError

from utils.redaction import register_secrets
from utils.webhooks import secret_key
from worker.errors import ConfigError
from worker.settings import ENVIRON_GIVEN, Settings, is_secret, markdown_table, mask

__all__ = ["Settings", "load_settings", "markdown_table", "mask", "storage_refusal"]


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = ENVIRON_GIVEN.set(environ)
    try:
        yield
    finally:
        ENVIRON_GIVEN.reset(token)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """Read and validate every variable (the environment, then `env_file`); raise ConfigError naming all bad ones.

    The secrets read are registered with utils.redaction, so that no message of the process carries them."""
    dotenv = env_file if env_file and Path(env_file).is_file() else None
    problems: list[str] = []
    with _reading(environ):
        try:
            settings = Settings(_env_file=dotenv)  # type: ignore[call-arg]
        except ValidationError as exc:
            source = os.environ if environ is None else environ
            problems = [_problem(error, source, dotenv) for error in exc.errors()]
            # The bad values at their defaults, so that the checks across variables still run.
            defaults = {str(e["loc"][0]): Settings.model_fields[str(e["loc"][0])].default for e in exc.errors()}
            settings = Settings(_env_file=dotenv, **defaults)  # type: ignore[call-arg]
    # From here on no message of this process carries them, whatever its source.
    register_secrets(settings.secret_values())
    problems += _cross_checks(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _problem(error: Any, environ: Mapping[str, str], dotenv: str | None) -> str:
    """One bad value as a person reads it: the variable, its (masked) value, where it came from, why."""
    name = str(error["loc"][0])
    env = name.upper()
    raw = error.get("input")
    shown = mask(raw) if name in Settings.model_fields and is_secret(name) else raw
    origin = "" if (environ.get(env) or "").strip() or not dotenv else f" (from {dotenv})"
    return f"{env}={shown!r}{origin}: {_reason(name, error)}"


def _reason(name: str, error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        choices = get_args(get_args(Settings.model_fields[name].annotation)[0]) or get_args(
            Settings.model_fields[name].annotation)
        return "must be one of " + ", ".join(str(c) for c in choices if c is not None)
    reasons = {"int_parsing": "must be an integer", "int_from_float": "must be an integer",
               "float_parsing": "must be a number", "finite_number": "must be a finite number",
               "greater_than_equal": f"must be at least {ctx.get('ge', 0):g}",
               "greater_than": f"must be more than {ctx.get('gt', 0):g}",
               "less_than_equal": f"must be at most {ctx.get('le', 0):g}"}
    return reasons.get(kind, str(error["msg"]).lower())


def _cross_checks(s: Settings) -> list[str]:
    problems = _deployment_checks(s)
    if s.supabase_url and not s.supabase_service_role_key:
        problems.append("SUPABASE_SERVICE_ROLE_KEY: required when SUPABASE_URL is set")
    if s.supabase_url and urlsplit(s.supabase_url).scheme not in ("http", "https"):
        problems.append(f"SUPABASE_URL={s.supabase_url!r}: must start with https:// (or http:// for local)")
    if s.database_url and urlsplit(s.database_url).scheme not in ("postgres", "postgresql"):
        problems.append(f"DATABASE_URL={mask(s.database_url)!r}: must be a postgresql:// URL")
    if s.worker_heartbeat_seconds >= s.worker_lease_seconds:
        problems.append(
            f"WORKER_HEARTBEAT_SECONDS={s.worker_heartbeat_seconds:g}: must be shorter than "
            f"WORKER_LEASE_SECONDS={s.worker_lease_seconds:g} (a third of it is a good value)")
    if "%" in str(s.worker_temp_dir):
        problems.append(f"WORKER_TEMP_DIR={str(s.worker_temp_dir)!r}: must not contain '%': ffmpeg would read it "
                        "as part of its numbered output names (thumb_%03d.jpg); choose a directory without it")
    if s.webhook_url and urlsplit(s.webhook_url).scheme not in ("http", "https"):
        problems.append(f"WEBHOOK_URL={s.webhook_url!r}: must be an http(s) URL")
    if s.webhook_url and not s.webhook_secret:
        problems.append("WEBHOOK_SECRET: required when WEBHOOK_URL is set (receivers verify the signature)")
    if s.webhook_secret:
        try:
            secret_key(s.webhook_secret)
        except ValueError:
            problems.append("WEBHOOK_SECRET=***: a whsec_ secret must be base64 after the prefix")
    return problems


def _deployment_checks(s: Settings) -> list[str]:
    """Half a deployment never falls back to the embedded defaults: the web app would not see its jobs."""
    if s.supabase_url and not s.database_url:
        return ["DATABASE_URL: required when SUPABASE_URL is set: your web app's jobs are in your Supabase "
                "project's database, not in an embedded one. Copy the connection string from the Supabase "
                "dashboard (Connect: the session pooler on port 5432, or the direct connection; the transaction "
                "pooler on port 6543 works but polls instead of listening)"]
    if s.storage_backend == "supabase" and not s.supabase_url:
        return ["SUPABASE_URL: required when STORAGE_BACKEND=supabase (https://<ref>.supabase.co, from the "
                "Supabase dashboard: Project Settings, API)"]
    return []


def storage_refusal(s: Settings) -> ConfigError | None:
    """A DATABASE_URL without SUPABASE_URL, for the commands that read or write files: refuse rather
    than write outputs to local folders the web app cannot read (`migrate` and `status` need no storage)."""
    if s.database_url and not s.supabase_url and s.storage_backend is None:
        return ConfigError([
            "SUPABASE_URL: required with DATABASE_URL: without it outputs would go to local folders your web app "
            "cannot read. Set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (Supabase dashboard: Project Settings, "
            "API), or STORAGE_BACKEND=local to keep outputs under WORKER_DATA_DIR/storage on purpose"])
    return None
