"""Secrets never leave the process: a Storage server that echoes our request headers in its error
bodies must not get the service-role key, the webhook secret or the database password into a job
row, a log line, /readyz, doctor's output or a webhook body."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.storage_server import StorageServer
from tests.support.media import make_clip
from tests.support.webhook_receiver import SECRET, Receiver
from tests.support.workers import insert_job, run_cli, start_worker, wait_for_status, wait_until, worker_env
from utils.redaction import redact, redact_all, register_secrets

pytestmark = pytest.mark.slow
KEY = "eyJhbGciOiJIUzI1NiJ9.service-role-key-that-must-stay-secret"
DB_PASSWORD = "db-password-that-must-stay-secret"
INPUT = {"bucket": "media-uploads", "path": "anonymous/in/clip.mp4"}


def test_redact_replaces_every_registered_secret_longest_first() -> None:
    register_secrets(["abcd-secret", "abcd-secret-longer", None, "xyz"])  # "xyz" is too short to be one
    assert redact("a abcd-secret-longer b abcd-secret c xyz") == "a *** b *** c xyz"
    assert redact_all({"k": ["abcd-secret", ("abcd-secret",)], "abcd-secret": 1}) == {"k": ["***", ("***",)], "***": 1}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StorageServer]:
    srv = StorageServer(KEY).start()
    srv.add_bucket("media-uploads")
    srv.add_bucket("media-outputs", 2 * 1024**3, ["video/mp4", "image/jpeg"])
    srv.put_object("media-uploads", INPUT["path"], make_clip(tmp_path / "clip.mp4", seconds=1))
    yield srv
    srv.close()


@pytest.fixture
def password_url(db_url: str) -> Iterator[str]:
    """The test database through a role with a password, as a hosted DATABASE_URL carries one."""
    parts = urlsplit(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"drop role if exists mw_secret_test; create role mw_secret_test login superuser "
                     f"password '{DB_PASSWORD}'")
    # The embedded server's URL names a socket directory in its query and no host: keep that as it is.
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    yield urlunsplit(parts._replace(netloc=f"mw_secret_test:{DB_PASSWORD}@{host}"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'mw_secret_test'")
        conn.execute("drop owned by mw_secret_test; drop role mw_secret_test")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def readyz(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            return answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.read().decode()


def test_headers_echoed_by_storage_never_reach_a_row_log_probe_doctor_or_webhook(
        password_url: str, data_dir: Path, tmp_path: Path, server: StorageServer, receiver: Receiver) -> None:
    port = free_port()
    env = worker_env(password_url, data_dir, SUPABASE_URL=server.url, SUPABASE_SERVICE_ROLE_KEY=KEY,
                     WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET, HEALTH_PORT=port, WORKER_RETRY_BASE_SECONDS=0)
    server.faults.echo_headers = 1000  # every request from here on
    job_id = insert_job(password_url, "video.process", {"input": INPUT}, max_attempts=2)
    worker = start_worker(env, log_path=tmp_path / "worker.log")
    try:
        row = wait_for_status(password_url, job_id, {"failed"}, timeout=120)
        wait_until(lambda: len(receiver.requests) >= 1, what="the job's webhook")
        probe = readyz(port)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    doctor = run_cli(["doctor"], env, check=False)
    assert server.requests("GET")  # the echoing server was asked, with the key in its headers
    written = {
        "the job's error": row["error"], "the job's errors": json.dumps(row["errors"]),
        "the worker's log": (tmp_path / "worker.log").read_text(), "/readyz": probe,
        "doctor": doctor.stdout + doctor.stderr,
        "webhook bodies": " ".join(r.body.decode() for r in receiver.requests),
    }
    assert "headers" in row["error"] or "500" in row["error"]  # the echo did reach the message
    for where, text in written.items():
        for secret in (KEY, DB_PASSWORD, SECRET, SECRET.removeprefix("whsec_")):
            assert secret not in text, f"{where} carries a secret"
        if where != "webhook bodies":  # the event carries the job's error, which quotes the echo
            assert "bad request headers" in text, f"the echo never reached {where}: this test proves nothing there"
    assert "***" in row["error"]
