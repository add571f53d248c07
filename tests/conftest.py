"""Shared fixtures: a real PostgreSQL, a fresh database per test, generated media.

The server is TEST_DATABASE_URL when set (CI points it at the machine's PostgreSQL),
otherwise an embedded one started for the session. Each test gets its own database
copied from a template that already has the migrations applied.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.databases import create_database, drop_database
from tests.support.private_pg import PrivatePostgres
from tests.support.webhook_receiver import receiver  # noqa: F401 (a fixture for the whole suite)
from worker.db import apply_migrations

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a maintenance database on the test server."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from worker.db.embedded import start_embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="mw-embedded-pg-"))
    os.chmod(data, 0o755)  # pgserver runs postgres as an unprivileged user when we are root
    yield start_embedded_postgres(data)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """Name of a database with every migration applied, to copy per test."""
    name = f"mwt_template_{os.getpid()}"
    url = create_database(pg_server_url, name)
    apply_migrations(url)
    yield name
    drop_database(pg_server_url, name)


@pytest.fixture
def empty_db(pg_server_url: str) -> Iterator[str]:
    """URL of a brand-new, empty database."""
    name = f"mwt_{os.getpid()}_{next(_counter)}"
    yield create_database(pg_server_url, name)
    drop_database(pg_server_url, name)


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database for this test."""
    name = f"mwt_{os.getpid()}_{next(_counter)}"
    yield create_database(pg_server_url, name, template=template_db)
    drop_database(pg_server_url, name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database, for arranging and asserting."""
    from psycopg.rows import dict_row

    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:  # type: ignore[arg-type]
        yield conn


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A WORKER_DATA_DIR for local storage."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A migrated PostgreSQL of this test's own, which it may stop and restart."""
    pg = PrivatePostgres()
    apply_migrations(pg.url)
    yield pg
    pg.close()


@pytest.fixture(scope="session")
def media_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mw-media-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_clip(media_dir: Path) -> Path:
    """A 2 s 320x240 H.264 + AAC clip generated with lavfi."""
    from tests.support.media import make_clip

    return make_clip(media_dir / "sample.mp4", seconds=2)

