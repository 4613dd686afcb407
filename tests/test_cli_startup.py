"""``nightpipe --help`` starts without the heavy libraries (issue 22): command modules import them
inside the commands. Read from ``python -X importtime`` of a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("astropy", "numba", "dask", "distributed", "scipy", "matplotlib", "numpy", "sqlalchemy")


def imported(*args: str) -> set[str]:
    """The top-level packages a ``nightpipe ARGS`` process imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nightpipe.cli.app", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage" in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert len(lines) > 100  # importtime's report is there to be read
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["lightcurve", "build", "--help"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    packages = imported(*args)
    assert "typer" in packages and "nightpipe" in packages
    assert packages.isdisjoint(HEAVY), sorted(packages & set(HEAVY))


def test_the_default_file_name_is_the_settings_one() -> None:
    """``config init`` names its default file without importing the settings' models."""
    from nightpipe import config
    from nightpipe.cli import config_cmd

    assert config_cmd.DEFAULT_FILE == config.DEFAULT_FILE
