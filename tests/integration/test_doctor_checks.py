"""`doctor` finds what would break the worker: handler modules it cannot import, output content
types the outputs bucket refuses, and no Supabase-only warning when storage is local."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.workers import run_cli, worker_env

pytestmark = pytest.mark.slow


def test_doctor_fails_on_a_handler_module_it_cannot_import(db_url: str, data_dir: Path) -> None:
    proc = run_cli(["doctor"], worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="myapp.not_there"), check=False)
    assert proc.returncode == 1
    assert "[FAIL] handlers: cannot import handler module 'myapp.not_there'" in proc.stdout
    assert "PYTHONPATH" in proc.stdout


def test_doctor_fails_on_an_output_type_the_bucket_refuses(db_url: str, data_dir: Path) -> None:
    proc = run_cli(["doctor"], worker_env(db_url, data_dir, WORKER_HANDLER_MODULES="tests.gif_handler"), check=False)
    assert proc.returncode == 1
    assert "[FAIL] outputs of example.gif: image/gif not in media-outputs's allowed_mime_types" in proc.stdout
    assert "outputs of video.process" not in proc.stdout  # the built-in types are all allowed


def test_doctor_on_local_storage_does_not_warn_about_supabase_limits(db_url: str, data_dir: Path) -> None:
    proc = run_cli(["doctor"], worker_env(db_url, data_dir))
    assert "[ok  ] handlers: audio.extract, media.probe" in proc.stdout
    assert "global upload limit" not in proc.stdout
