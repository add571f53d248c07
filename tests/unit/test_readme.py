"""The README tells the truth about configuration and commands."""

from pathlib import Path

from worker.cli import COMMANDS
from worker.config import markdown_table

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_variable_table_is_generated_from_config() -> None:
    assert markdown_table() in README, "regenerate it: python worker.py config --markdown"


def test_readme_names_every_command() -> None:
    for command in COMMANDS:
        assert f"python worker.py {command}" in README or command == "run" and "python worker.py`" in README
