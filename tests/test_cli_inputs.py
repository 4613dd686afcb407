"""Commands run before their inputs exist say what is missing and which command makes it, and
exit 2 (nothing to do) instead of 0 with "0 measured"; on a real SQLite database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nightpipe.cli.app import main
from nightpipe.inventory.walk import SCAN_SUFFIXES
from nightpipe.store import open_database
from nightpipe.store.models import Frame
from nightpipe.store.steps import record_step

TARGET = """
[[timeseries.targets]]
name = "HAT-P-32"
ra = 31.04283
dec = 46.68784
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Settings with one target, the database and products in ``tmp_path``."""
    path = tmp_path / "nightpipe.toml"
    path.write_text(
        f"[paths]\noutput = {str(tmp_path / 'out')!r}\n"
        f"[database]\nurl = 'sqlite:///{tmp_path / 'db.sqlite'}'\n" + TARGET
    )
    return path


def _nightpipe(config: Path, *args: str) -> list[str]:
    return ["-q", "-c", str(config), *args]


def _add_lights(config: Path, n: int, *, calibrated: bool = False) -> None:
    db = open_database(f"sqlite:///{config.parent / 'db.sqlite'}")
    try:
        with db.session() as s:
            frames = [
                Frame(path=f"/raw/l{i}.fits", size=1, mtime=0, kind="light", night="2017-12-19")
                for i in range(n)
            ]
            s.add_all(frames)
            s.flush()
            for f in frames if calibrated else []:
                record_step(s, step="calibrate", status="ok", frame_id=f.id, output_path=f"/out/l{f.id}.fits")
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["photometry"], "no light frames in the database"),
        (["solve"], "no light frames in the database"),
        (["zeropoints"], "no light frames in the database"),
        (["calibrate"], "no light frames in the database"),
        (["lightcurve", "build"], "no light frames in the database"),
        (["masters"], "no calibration frames (bias, dark, flat) in the database"),
        (["photometry", "--night", "2017-12-19"], "no light frames of night 2017-12-19 in the database"),
    ],
)
def test_before_the_scan_each_command_says_to_scan(
    command: list[str], missing: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_nightpipe(config, *command)) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert missing in err and "`nightpipe scan RAW_DIR`" in err
    assert "0 measured" not in captured.out and "None" not in captured.out


def test_before_calibration_photometry_and_solve_say_to_calibrate(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_lights(config, 3)
    for command in ("photometry", "solve"):
        assert main(_nightpipe(config, command)) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "no calibrated frames (3 light frames scanned)" in err and "`nightpipe calibrate`" in err


def test_before_photometry_zero_points_and_light_curves_say_to_measure(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_lights(config, 2, calibrated=True)
    for command in (["zeropoints"], ["lightcurve", "build"]):
        assert main(_nightpipe(config, *command)) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"no source tables in {config.parent / 'out' / 'sources'}" in err
        assert "`nightpipe photometry`" in err


def test_run_on_a_folder_without_fits_files_lists_what_counts(tmp_path: Path, config: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "notes.txt").write_text("the night was cloudy")
    (raw / "sub" / "frame.fits.txt").write_text("not a frame")
    proc = subprocess.run(
        [sys.executable, "-m", "nightpipe.cli.app", *_nightpipe(config, "run", str(raw))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    err = " ".join(proc.stderr.split())
    assert f"no FITS files in {raw} or its sub-folders" in err
    assert " ".join(SCAN_SUFFIXES) in err and ".fits" in SCAN_SUFFIXES and "any case" in err
    assert not (tmp_path / "out").exists()  # nothing was started: no lock, no database rows


def test_solve_on_a_folder_without_fits_files(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(_nightpipe(config, "solve", str(tmp_path / "empty"))) == 2
    assert "no FITS files in" in capsys.readouterr().err
