"""Calibration on bad input: corrupt pixels, file names a FITS header cannot hold, masters of an odd
size, and a frame without an exposure time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe.calib.calibrate import check_finite
from nightpipe.calib.library import MasterKeys, match_master, register_master
from nightpipe.calib.masters import run_masters
from nightpipe.config import validate_settings
from nightpipe.errors import CalibrationError
from nightpipe.frames.headers import ascii_name, ascii_text
from nightpipe.store import open_database
from nightpipe.store.models import Frame, Master

T0 = datetime(2024, 3, 10, 4, 0, tzinfo=UTC)


def test_corrupt_pixels_are_refused_with_the_reason() -> None:
    image = np.full((20, 30), 1000.0, np.float32)
    check_finite(image, "ok.fits")  # nothing to say
    few_nan = image.copy()
    few_nan[3, 4] = np.nan  # a "no data" marker: left to the calibration's NO_DATA flag
    check_finite(few_nan, "few.fits")
    cases = {
        "no finite pixel: every pixel is NaN or infinite": np.full_like(image, np.nan),
        "2 pixels are infinite (+inf or -inf), which no camera writes": np.where(
            np.arange(image.size).reshape(image.shape) < 2, -np.inf, image
        ),
        "60 % of the pixels are NaN": np.where(
            np.arange(image.size).reshape(image.shape) < 360, np.nan, image
        ),
    }
    for says, data in cases.items():
        with pytest.raises(CalibrationError) as caught:
            check_finite(data.astype(np.float32), "/night/frame.fits")
        text = str(caught.value)
        assert text.startswith(f"/night/frame.fits: {says}"), text
        assert "re-copy it from the camera" in text


def test_names_a_header_cannot_hold_are_escaped_or_hashed() -> None:
    header = fits.Header()
    header["NPRAW"] = ascii_name("lumière_ü_星.fits")
    header.add_history(ascii_text("raw: /nuit d'été/lumière_ü_星.fits[0]"))
    text = header.tostring()  # astropy refuses non-ASCII values: this must not raise
    assert "lumi\\xe8re_\\xfc_\\u661f.fits" in text and "t\\xe9/" in text
    long_a, long_b = ascii_name("星" * 30 + "a.fits"), ascii_name("星" * 30 + "b.fits")
    assert len(long_a) == 68 and long_a != long_b and long_a.isascii()
    assert ascii_name("plain name.fits") == "plain name.fits"
    assert ascii_text("tab\there") == "tab\\there"


def _bias(path: Path, shape: tuple[int, int], seed: int) -> Frame:
    data = np.random.default_rng(seed).normal(1000, 5, shape).astype(np.float32)
    fits.PrimaryHDU(data, header=fits.Header([("IMAGETYP", "Bias Frame"), ("EXPTIME", 0.0)])).writeto(path)
    return Frame(
        path=str(path), hdu=0, size=path.stat().st_size, mtime=path.stat().st_mtime,
        sha1=hashlib.sha1(path.read_bytes()).hexdigest(), status="ok", kind="bias", exptime=0.0,
        xbin=1, ybin=1, gain=1.0, naxis1=shape[1], naxis2=shape[0], mid_utc=T0, night="2024-03-09",
    )  # fmt: skip


def test_the_odd_sized_master_is_the_one_with_the_longer_name(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    # the odd frame sorts first by size and by name: it used to take the plain name
    frames = [_bias(raw / "a_small_bias.fits", (16, 24), 0)]
    frames += [_bias(raw / f"bias_{i}.fits", (32, 48), i + 1) for i in range(5)]
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    settings = validate_settings(
        {
            "paths": {"output": str(tmp_path / "out"), "masters": str(tmp_path / "masters")},
            "database": {"url": url},
        }
    )
    db = open_database(url)
    try:
        with db.session() as session:
            session.add_all(frames)
        run_masters(settings, db)
        run_masters(settings, db)  # a second run keeps the names
        with db.session() as session:
            names = {m.nframes: Path(m.path).name for m in session.scalars(select(Master))}
    finally:
        db.dispose()
    assert names == {
        5: "bias_1x1_g1.0_20240310.fits",
        1: "bias_1x1_g1.0_24x16px_20240310.fits",
    }
    assert sorted(p.name for p in (tmp_path / "masters").iterdir()) == sorted(names.values())


def test_a_frame_without_exposure_time_is_told_so_when_a_dark_is_matched(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    keys = MasterKeys("dark", 1, 1, 100, 80, 1.5, None, None, exptime=60.0, obs_time=T0)
    try:
        with db.session() as session:
            register_master(session, path="/lib/dark.fits", keys=keys, nframes=5, inputs=["d.fits"],
                            inputs_hash="h", settings_hash="s", software="test", quality={})  # fmt: skip
            frame = Frame(path="/night/light.fits", kind="light", xbin=1, ybin=1, naxis1=100, naxis2=80,
                          gain=1.5, exptime=None, mid_utc=T0)  # fmt: skip
            outcome = match_master(session, frame, "dark", validate_settings({}))
    finally:
        db.dispose()
    assert outcome.master is None and outcome.reason is not None
    assert outcome.reason.startswith("no exposure time in the header (EXPTIME")
    assert "None" not in outcome.reason
