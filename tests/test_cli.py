"""The console script: help, version, error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nightpipe.cli.app import main
from nightpipe.exit_codes import MEANINGS


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


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_help_lists_the_exit_codes(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "Exit codes:" in out
    for code, meaning in MEANINGS.items():
        assert f"{int(code)} {meaning}" in out


def test_a_commands_exit_code_reaches_the_shell(tmp_path: Path) -> None:
    """``typer.Exit(1)`` from a command (here: an unreadable file met by ``ingest``) is the
    process's exit status, not 0."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "notes.fits").write_text("this is not FITS\n")
    proc = subprocess.run(
        [
            sys.executable, "-m", "nightpipe.cli.app", "-q",
            "-s", f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'",
            "-s", f"paths.output={str(tmp_path / 'out')!r}",
            "ingest", str(incoming), str(tmp_path / "archive"), "--no-process", "--settle", "0",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "1 unreadable" in proc.stdout


def test_lightcurve_build_without_a_target_prints_the_block_to_add(tmp_path: Path) -> None:
    """The hint names ``[[timeseries.targets]]`` as it is written in nightpipe.toml (rich markup
    used to swallow it: "add a [] block")."""
    proc = subprocess.run(
        [
            sys.executable, "-m", "nightpipe.cli.app",
            "-s", f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'",
            "-s", f"paths.output={str(tmp_path / 'out')!r}",
            "lightcurve", "build",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "add a [[timeseries.targets]] block with name, ra, dec" in " ".join(proc.stderr.split())


def test_messages_print_brackets_as_they_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file name with brackets (and what looks like rich markup) in an error comes out verbatim."""
    odd = tmp_path / "[red]night[/] [1]" / "frame[2].fits"
    args = ["-q", "-s", f"database.url='sqlite:///{tmp_path / 'db.sqlite'}'", "solve", str(odd)]
    assert main(args) == 2
    assert f"{odd}: no such file or folder" in " ".join(capsys.readouterr().err.split())


def test_one_output_option_moves_products_masters_and_an_sqlite_database(tmp_path: Path) -> None:
    from nightpipe.cli.common import CliState

    moved = CliState(output=tmp_path / "n2").settings
    assert moved.paths.output == tmp_path / "n2"
    assert moved.paths.masters == tmp_path / "n2" / "masters"
    assert moved.database.url == f"sqlite:///{tmp_path / 'n2' / 'nightpipe.sqlite'}"
    kept = CliState(output=tmp_path / "n3", overrides=["paths.masters='/srv/masters'"]).settings
    assert kept.paths.output == tmp_path / "n3" and str(kept.paths.masters) == "/srv/masters"  # --set wins
    shared = CliState(
        output=tmp_path / "n4", overrides=["database.url='postgresql+psycopg://db.example/nightpipe'"]
    ).settings
    assert shared.database.url == "postgresql+psycopg://db.example/nightpipe"  # a server is never moved
    assert shared.paths.output == tmp_path / "n4"


def test_the_cli_and_report_helpers_docstring_examples() -> None:
    import doctest

    import nightpipe.cli.common
    import nightpipe.pipeline.step_state
    import nightpipe.report.night_state

    for module in (nightpipe.cli.common, nightpipe.pipeline.step_state, nightpipe.report.night_state):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__
