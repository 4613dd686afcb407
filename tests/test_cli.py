"""The console script: help, version, error handling."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nightpipe.cli.app import main


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "config" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "nightpipe" in capsys.readouterr().out


def test_typed_error_is_one_line_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nightpipe.cli.app", "-s", "camera.gain=zero", "config", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "camera.gain" in proc.stderr


def test_debug_shows_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nightpipe.cli.app", "--debug", "-s", "camera.gain=zero", "config", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_unknown_command_is_usage_error() -> None:
    assert main(["no-such-command"]) == 2
