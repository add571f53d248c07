"""A PostgreSQL of a test's own (pgserver's binaries in a temporary directory), to stop and restart
without disturbing anything else."""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path


class PrivatePostgres:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver import _commands

        self._pg_ctl = _commands.pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="mw-restart-pg-"))
        self.dir.chmod(0o755)
        self.server = pgserver.get_server(self.dir / "pg", cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        """Stop the server (fast: connections are cut)."""
        # postmaster.opts holds the original command line: keep its -h/-k/-p options for start().
        self._opts = (self.server.pgdata / "postmaster.opts").read_text().split()
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        options = " ".join(o.strip('"') if o.startswith('"-') else o for o in self._opts[1:])
        self._pg_ctl(["-w", "-o", options, "-l", str(self.server.log), "start"],
                     pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def restart(self, down_seconds: float) -> None:
        """Stop, stay down a while, start again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
