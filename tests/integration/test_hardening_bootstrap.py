"""scripts/bootstrap.sh, as test.sh and demo.sh source it: a clear message for a Python older than 3.11,
and a venv made without pip repaired (issue 14 §8). It runs on throwaway venvs (BOOTSTRAP_VENV) with an
empty requirements file, so nothing is downloaded and the project's .venv is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workers import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash scripts")


def bootstrap(tmp_path: Path, venv: Path, python: str) -> subprocess.CompletedProcess[str]:
    requirements = tmp_path / "nothing.txt"
    requirements.write_text("")
    env = {**os.environ, "PYTHON": python, "BOOTSTRAP_VENV": str(venv), "PIP_NO_INDEX": "1"}
    return subprocess.run(["bash", "-c", 'source scripts/bootstrap.sh "$0"', str(requirements)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that answers every question with an old version."""
    fake = tmp_path / "fake-bin" / "python3"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    return fake


def assert_says_how_to_install_python(stderr: str) -> None:
    assert "needs Python 3.11 or newer" in stderr
    assert "Debian/Ubuntu: sudo apt-get install" in stderr and "macOS: brew install python@" in stderr


def test_a_python_older_than_3_11_is_refused_with_how_to_install_one(tmp_path: Path) -> None:
    run = bootstrap(tmp_path, tmp_path / "venv", str(fake_python(tmp_path, "3.9.18")))
    assert run.returncode == 1
    assert_says_how_to_install_python(run.stderr)
    assert "is Python 3.9.18" in run.stderr
    assert not (tmp_path / "venv").exists()


def test_a_missing_python_is_refused_with_how_to_install_one(tmp_path: Path) -> None:
    run = bootstrap(tmp_path, tmp_path / "venv", str(tmp_path / "no-such-python3"))
    assert run.returncode == 1
    assert_says_how_to_install_python(run.stderr)
    assert "not a Python that runs" in run.stderr


def test_a_venv_made_without_pip_gets_pip_and_its_requirements(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    run = bootstrap(tmp_path, venv, sys.executable)
    assert run.returncode == 0, run.stderr
    assert "has no pip" in run.stderr and "ensurepip" in run.stderr
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--version"], check=True, capture_output=True)
    assert list(venv.glob(".installed-*-nothing.txt"))  # installed, so the next run skips pip


def test_a_venv_of_an_old_python_is_recreated(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(fake_python(tmp_path, "3.8.10"))
    run = bootstrap(tmp_path, venv, sys.executable)
    assert run.returncode == 0, run.stderr
    assert "runs Python 3.8.10: recreating it" in run.stderr
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             check=True, capture_output=True, text=True).stdout
    assert version.strip() == "True"
