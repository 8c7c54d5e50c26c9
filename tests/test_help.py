"""`--help` snapshots: each command's help as a user reads it at 100 columns. A
change to an option, its label or its wording shows up here as a diff to review; after a
deliberate change, regenerate with ``SCORELAB_UPDATE_SNAPSHOTS=1 pytest tests/test_help.py``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from scorelab.cli import app

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"
COMMANDS = [None, *typer.main.get_command(app).commands]  # None: `scorelab --help`
ENV = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "SCORELAB_PLUGINS": ""}


def _help(command: str | None) -> str:
    argv = ["--help"] if command is None else [command, "--help"]
    res = CliRunner().invoke(app, argv, env=ENV)
    assert res.exit_code == 0, res.output
    return "\n".join(line.rstrip() for line in res.output.strip("\n").splitlines()) + "\n"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "scorelab")
def test_help_matches_its_snapshot(command):
    text = _help(command)
    path = SNAPSHOTS / f"{command or 'scorelab'}.txt"
    if os.environ.get("SCORELAB_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot for {command}; run with SCORELAB_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "scorelab")
def test_help_reads_well(command):
    """No type label on a flag (`<bool>`), no line wider than the terminal, every option
    explained."""
    text = _help(command)
    assert "<bool>" not in text
    assert max(map(len, text.splitlines())) <= 100
    for line in text.splitlines():
        option = re.match(r"│ (--[a-z-]+)\s+│?\s*$", line)
        assert option is None, f"{command}: {option.group(1)} has no help text"
