"""The command line as a new user meets it: usage errors, checks before uploads, where things are,
commands that only read, `jobs list`, and Ctrl-C during `enqueue --wait`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.workers import ROOT, insert_job, run_cli, worker_env
from worker.cli_wait import progress_line

pytestmark = pytest.mark.slow


def bare_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Nothing configured but the data directory: the embedded mode."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKER_", "SUPABASE_", "STORAGE_", "DATABASE_URL", "UPLOAD_"))}
    return {**env, "WORKER_DATA_DIR": str(data_dir), "LOG_FORMAT": "json", **extra}


def job_count(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select count(*) from public.media_jobs").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize(("args", "message"), [
    (["jobs", "show", "nonsense"], "'nonsense' is not a job id"),
    (["retry", "42"], "'42' is not a job id"),
    (["enqueue", "video.process", "--input", "/no/such/clip.mp4"], "/no/such/clip.mp4: no such file"),
    (["enqueue", "video.process", "--payload", "{bad"], "--payload: not valid JSON"),
    (["jobs", "list", "--since", "yesterday"], "give an age such as 30m, 2h or 7d"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(args, bare_env(tmp_path / "data"), check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "usage:" in proc.stderr
    assert "invalid configuration" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing was started to find that out


@pytest.mark.parametrize(("args", "message"), [
    (["enqueue", "video.procss"], "unknown job type 'video.procss'"),
    (["enqueue", "video.process", "--payload", '{"max_heigth": 480}'], "payload.max_heigth: unknown key"),
    (["enqueue", "video.process", "--payload", '{"thumbnails": 50}'], "payload.thumbnails"),
    (["enqueue", "video.process", "--payload", '{"crf": 0}'], "crf"),
])
def test_enqueue_checks_the_job_before_uploading_anything(db_url: str, data_dir: Path, sample_clip: Path,
                                                          args: list[str], message: str) -> None:
    proc = run_cli([*args, "--input", str(sample_clip)], worker_env(db_url, data_dir), check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (data_dir / "storage" / "media-uploads").exists() or not any(
        (data_dir / "storage" / "media-uploads").rglob("*.mp4"))
    assert job_count(db_url) == 0


def test_input_is_required_only_by_job_types_that_read_one(db_url: str, data_dir: Path) -> None:
    proc = run_cli(["enqueue", "media.probe"], worker_env(db_url, data_dir), check=False)
    assert proc.returncode == 2 and "media.probe reads an input file: give it with --input FILE" in proc.stderr
    env = worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.lifecycle_handlers")
    job_id = run_cli(["enqueue", "test.slow", "--payload", '{"seconds": 0.1}'], env).stdout.strip()
    assert job_count(db_url) == 1 and len(job_id) == 36


@pytest.mark.parametrize("command", [["status"], ["jobs", "list"], ["workers"], ["doctor"],
                                     ["retry", "00000000-0000-0000-0000-000000000000"],
                                     ["cancel", "00000000-0000-0000-0000-000000000000"]])
def test_commands_that_only_read_never_create_an_embedded_database(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "data"
    proc = run_cli(command, bare_env(data), check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"no embedded database at {data / 'postgres'}" in proc.stdout + proc.stderr
    assert not (data / "postgres").exists()


def test_every_command_says_where_it_works(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    # A password in the URL (the embedded server's URL has an empty one: postgres:@).
    with_password = db_url.replace("postgres:@", "postgres@").replace("postgres@", "postgres:pw@")
    proc = run_cli(["status"], worker_env(db_url, data_dir, DATABASE_URL=with_password))
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"media-worker: data {data_dir};")
    assert f".env none (no {ROOT / '.env'})" in first or f".env {ROOT / '.env'}" in first
    assert "database postgresql://postgres:***@" in first and ":pw@" not in first
    assert f"storage local folders under {data_dir / 'storage'}" in first


def test_half_a_deployment_is_refused_by_every_command(db_url: str, data_dir: Path) -> None:
    supabase_only = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "service-key"}
    for command in (["run", "--until-idle"], ["status"], ["doctor"], ["jobs", "list"]):
        proc = run_cli(command, bare_env(data_dir, **supabase_only), check=False)
        assert proc.returncode == 2 and "DATABASE_URL: required when SUPABASE_URL is set" in proc.stderr
    assert not (data_dir / "postgres").exists()
    database_only = {k: v for k, v in worker_env(db_url, data_dir).items() if k != "STORAGE_BACKEND"}
    for command in (["run", "--until-idle"], ["enqueue", "media.probe", "--input", __file__]):
        proc = run_cli(command, database_only, check=False)
        assert proc.returncode == 2 and "STORAGE_BACKEND=local" in proc.stderr, proc.stderr
    assert run_cli(["status"], database_only).returncode == 0  # reading needs no storage


def test_jobs_list_filters_and_shows_the_first_error_line(db_url: str, data_dir: Path) -> None:
    failed = insert_job(db_url, "video.process", {}, status="failed", attempts=3,
                        error="input rejected: not a video\nffmpeg said: moov atom not found")
    pending = insert_job(db_url, "media.probe", {})
    env = worker_env(db_url, data_dir)
    listing = run_cli(["jobs", "list", "--status", "failed"], env).stdout
    assert failed in listing and pending not in listing
    line = next(line for line in listing.splitlines() if line.startswith(failed))
    assert "video.process" in line and "failed" in line and "3/3" in line
    assert line.endswith("input rejected: not a video") and "moov" not in listing
    assert pending in run_cli(["jobs", "list", "--type", "media.probe", "--since", "1h"], env).stdout
    assert len(run_cli(["jobs", "list", "--limit", "1"], env).stdout.strip().splitlines()) == 2  # header + 1


def test_ctrl_c_during_enqueue_wait_says_the_job_carries_on(db_url: str, data_dir: Path, sample_clip: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "enqueue", "video.process", "--input",
                             str(sample_clip), "--wait"], cwd=ROOT, env=worker_env(db_url, data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()  # printed once the job is inserted; no worker runs it
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert f"job {job_id} carries on" in err and "Traceback" not in err


def test_the_progress_line_says_each_word_once() -> None:
    assert progress_line(100.0, "completed", "completed").split("% ")[1].split() == ["completed"]
    assert progress_line(40.0, "processing", "processing").split("% ")[1].split() == ["processing"]
    assert "processing (uploading)" in progress_line(90.0, "processing", "uploading")
    assert progress_line(0.0, "pending", None).split("% ")[1].split() == ["pending"]
