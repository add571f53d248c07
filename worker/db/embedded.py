"""The embedded PostgreSQL used when DATABASE_URL is unset (DESIGN.md §7)."""

from __future__ import annotations

import warnings
from pathlib import Path


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the PostgreSQL under data_dir/postgres; return its URL.

    Data persists across restarts. The server stops when the last process using it
    exits (pgserver counts its users in the data directory).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal on servers.
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    url: str = server.get_uri()
    return url
