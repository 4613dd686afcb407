"""Calibration on bad input: corrupt pixels, file names a FITS header cannot hold, masters of an odd
size, and a frame without an exposure time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.calib.calibrate import check_finite
from nightpipe.calib.library import MasterKeys, match_master, register_master
from nightpipe.config import validate_settings
from nightpipe.errors import CalibrationError
from nightpipe.frames.headers import ascii_name, ascii_text
from nightpipe.store import open_database
from nightpipe.store.models import Frame

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
