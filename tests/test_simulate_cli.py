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


def test_simulate_bad_dialect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "x", "--dialect", "fitswriter"]) == 2
    assert "dialect" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
