"""``nightpipe simulate`` writes a night and its truth; bad options are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from nightpipe.cli.app import main
from nightpipe.simulate import Truth


def test_simulate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["-q", "simulate", "out night", "--size", "48", "--lights", "3", "--bias", "2", "--darks", "1"]
    args += ["--dark-exptime", "30", "--flats", "2", "--flat-filter", "R", "--dialect", "nina", "--seed", "5"]
    args += ["--wcs", "--moving", "--junk"]
    assert main(args) == 0
    out = tmp_path / "out night"
    truth = Truth.load(out / "truth.json")
    assert truth.seed == 5 and truth.dialect == "nina"
    assert len(truth.frames) == 3 + 2 + 1 + 2 * 2
    assert (out / "flat_R_002.fits").is_file()
    assert {j["file"] for j in truth.junk} >= {"empty.fits", "focus notes.fits"}
    assert truth.moving_object is not None
    header = fits.getheader(out / "SIM-1_V_0002.fits")
    assert header["IMAGETYP"] == "LIGHT" and header["CTYPE1"] == "RA---TAN"
    assert header["SITELAT"] == pytest.approx(31.6811)  # the observatory of the settings


def test_simulate_flip_and_field_rotation(tmp_path: Path) -> None:
    args = ["-q", "simulate", str(tmp_path / "n"), "--size", "48", "--lights", "4", "--bias", "0"]
    args += ["--darks", "0", "--flats", "0", "--cadence", "600", "--field-rotation", "12", "--flip-at", "2"]
    assert main(args) == 0
    lights = Truth.load(tmp_path / "n" / "truth.json").lights()
    assert [round(f["rotation_deg"], 6) for f in lights] == [0.0, 2.0, 184.0, 186.0]  # 12 deg/h, 10 min
    sides = [fits.getheader(tmp_path / "n" / f["file"])["PIERSIDE"] for f in lights]
    assert sides == ["EAST", "EAST", "WEST", "WEST"]
    assert main(["-q", "simulate", str(tmp_path / "m"), "--lights", "4", "--flip-at", "4"]) == 2  # no light 4


def test_simulate_bad_dialect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "x", "--dialect", "fitswriter"]) == 2
    assert "dialect" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_simulate_nina_camera_flags(tmp_path: Path) -> None:
    args = [
        "-q",
        "simulate",
        str(tmp_path / "n"),
        "--size",
        "48",
        "--lights",
        "1",
        "--bias",
        "0",
        "--darks",
        "0",
    ]
    args += [
        "--flats",
        "0",
        "--dialect",
        "nina",
        "--gain",
        "0.8",
        "--gain-setting",
        "100",
        "--offset-setting",
        "30",
    ]
    assert main([*args, "--no-egain"]) == 0
    header = fits.getheader(tmp_path / "n" / "SIM-1_V_0001.fits")
    assert (header["GAIN"], header["OFFSET"]) == (100, 30) and "EGAIN" not in header
    assert Truth.load(tmp_path / "n" / "truth.json").camera["gain"] == 0.8
    args[2] = str(tmp_path / "e")
    assert main(args) == 0
    assert fits.getheader(tmp_path / "e" / "SIM-1_V_0001.fits")["EGAIN"] == 0.8
    assert main([*args[:-6], "--gain", "-1"]) == 2  # a one-line error, not a traceback
