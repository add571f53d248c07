"""Opening connections: the only place that decides how the worker talks to Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg

from worker.errors import DatabaseUnavailable

# Errors that mean "the connection or server is gone", not "your SQL is wrong".
CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)

CONNECT_TIMEOUT_SECONDS = 10


def is_transaction_pooler(url: str) -> bool:
    """True for Supavisor/PgBouncer transaction mode (port 6543 or ?pgbouncer=true)."""
    parts = urlsplit(url)
    return parts.port == 6543 or "pgbouncer=true" in (parts.query or "")


def libpq_url(url: str) -> str:
    """The URL without `pgbouncer=true`, a Prisma-style hint that libpq would refuse."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pgbouncer"]
    # %20, not urlencode's default "+": libpq reads "+" literally (options=-c%20statement_timeout=5s).
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def dict_rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Rows as dicts, like psycopg's dict_row, but naming columns straight from the result.

    dict_row builds `cursor.description` (a Column object per column, with type look-ups) for
    every result; for the 24-column claim that was a third of the worker's CPU per job.
    """
    result = cursor.pgresult
    names = [result.fname(i).decode() for i in range(result.nfields)] if result is not None else []  # type: ignore[union-attr]

    def make_row(values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(names, values, strict=True))

    return make_row


def connect(url: str, *, application_name: str = "media-worker") -> psycopg.Connection[dict[str, Any]]:
    """An autocommit connection with dict rows; raise DatabaseUnavailable if unreachable."""
    pooled = is_transaction_pooler(url)
    try:
        conn = psycopg.connect(
            libpq_url(url),
            autocommit=True,
            row_factory=dict_rows,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=application_name,
            # Transaction poolers hand each statement to any backend: prepared
            # statements would vanish between statements.
            prepare_threshold=None if pooled else 5,
            # Notice a silently dead peer (pooler failover, network black hole) within about a
            # minute instead of the kernel's ~15 min, so heartbeats and shutdown never hang on it.
            keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
            tcp_user_timeout=60_000,
        )
        if not pooled:
            # Plan each prepared statement once: Postgres would re-plan the queue round for every
            # call (its custom plans look cheaper), and planning it costs four times running it.
            try:
                conn.execute("set plan_cache_mode = force_generic_plan")
            except BaseException:
                conn.close()
                raise
        return conn
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a lost connection into DatabaseUnavailable, once, at the boundary."""
    try:
        yield
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"database connection lost: {first_line(exc)}") from exc


def ping(url: str, timeout_seconds: int = 3) -> None:
    """Open a connection and run `select 1`; raise DatabaseUnavailable if that fails."""
    try:
        with psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=timeout_seconds,
                             prepare_threshold=None) as conn:
            conn.execute("select 1")
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"database unreachable: {first_line(exc)}") from exc
