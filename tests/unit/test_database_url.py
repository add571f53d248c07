"""The URL handed to libpq: the pooler hint dropped, everything else as libpq reads it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from worker.db.connection import is_transaction_pooler, libpq_url


def test_the_pgbouncer_hint_is_dropped_and_spaces_stay_spaces_for_libpq() -> None:
    url = libpq_url("postgresql://u:p@db:6543/postgres?pgbouncer=true&options=-c%20statement_timeout%3D5s")
    assert "pgbouncer" not in url and "+" not in url  # libpq reads "+" as a plus sign, not a space
    assert parse_qs(urlsplit(url).query)["options"] == ["-c statement_timeout=5s"]
    assert is_transaction_pooler("postgresql://u:p@db:6543/postgres")
