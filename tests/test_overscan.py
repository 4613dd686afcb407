"""Overscan sections, models and trimming, checked against ccdproc and known truth."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightpipe.calib.overscan import (
    apply_overscan,
    format_section,
    overscan_level,
    overscan_model,
    parse_section,
    plan_overscan,
    subtract_overscan,
    trim,
)
from nightpipe.config import CalibrationConfig
from nightpipe.errors import CalibrationError, HeaderError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[4:13,1:520]", (slice(0, 520), slice(3, 13))),
        ("[   4:  13,   1: 520]", (slice(0, 520), slice(3, 13))),
        ("[13:4,520:1]", (slice(0, 520), slice(3, 13))),
        ("[*,2:3]", (slice(1, 3), slice(0, 600))),
    ],
)
def test_parse_section(text: str, expected: tuple[slice, slice]) -> None:
    assert parse_section(text, (520, 600)) == expected


@pytest.mark.parametrize("text", ["", "4:13,1:520", "[a:b,1:2]", "[0:3,1:2]", "[1:700,1:2]"])
def test_bad_sections_are_header_errors(text: str) -> None:
    with pytest.raises(HeaderError):
        parse_section(text, (520, 600))


def test_format_section_round_trips() -> None:
    assert parse_section(format_section((slice(2, 9), slice(0, 5)))) == (slice(2, 9), slice(0, 5))


def test_models_recover_a_known_overscan() -> None:
    rng = np.random.default_rng(2)
    ny, nx = 300, 120
    rows = np.arange(ny)
    truth = 500.0 + 0.02 * rows - 3e-5 * rows**2
    frame = rng.normal(0.0, 5.0, (ny, nx)) + truth[:, None]
    frame[:, :100] += 1000.0  # the exposed part
    sec = parse_section(f"[101:{nx},1:{ny}]")
    fit = overscan_model(frame[sec], "fit", order=2)
    assert fit.axis == 1
    # a 2nd-order fit to 20-pixel medians: error well below one pixel's noise
    assert np.abs(fit.values - truth).max() < 1.5
    mean = overscan_model(frame[sec], "mean")
    assert (mean.values - truth).std() == pytest.approx(5.0 / np.sqrt(20), rel=0.15)
    corrected = subtract_overscan(frame, sec, "fit", 2)
    assert corrected[:, :100].mean() == pytest.approx(1000.0, abs=0.4)  # fit error ~0.09
    # a strip along the bottom gives one value per column
    bottom = overscan_model(frame[:5, :], "median")
    assert bottom.axis == 0 and bottom.values.shape == (nx,)


def test_level_is_extended_over_a_short_strip() -> None:
    frame = np.zeros((10, 6))
    frame[2:8, 5] = np.arange(6)
    level = overscan_level(frame, (slice(2, 8), slice(5, 6)), "mean")
    assert level.shape == (10, 1)
    assert level[:, 0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 5, 5]


def test_bad_strip_and_method() -> None:
    with pytest.raises(CalibrationError):
        overscan_model(np.full((4, 2), np.nan), "mean")
    with pytest.raises(CalibrationError):
        overscan_model(np.ones((4, 2)), "mode")  # type: ignore[arg-type]


def test_plan_from_header_then_settings() -> None:
    cal = CalibrationConfig(overscan="mean", biassec="[1:2,1:10]", trimsec="[3:20,1:10]")
    header = fits.Header({"BIASSEC": "[19:20,1:10]", "DATASEC": "[1:18,2:10]"})
    plan = plan_overscan(header, (10, 20), cal)
    assert plan.biassec == (slice(0, 10), slice(18, 20))
    assert plan.trimsec == (slice(1, 10), slice(0, 18))
    assert plan.output_shape == (9, 18)
    assert plan.describe() == ["overscan mean subtracted from [19:20,1:10]", "trimmed to [1:18,2:10]"]
    from_settings = plan_overscan(fits.Header(), (10, 20), cal)
    assert from_settings.biassec == (slice(0, 10), slice(0, 2))
    off = plan_overscan(header, (10, 20), CalibrationConfig(overscan="none"))
    assert off.biassec is None and off.trimsec is not None
    none = plan_overscan(fits.Header(), (10, 20), CalibrationConfig())
    assert not none.active and none.output_shape == (10, 20)
    with pytest.raises(HeaderError, match="frame.fits"):
        plan_overscan(fits.Header({"BIASSEC": "[30:40,1:10]"}), (10, 20), cal, path="frame.fits")


def test_apply_overscan_agrees_with_ccdproc_on_a_real_frame(shared_data: Path) -> None:
    ccdproc = pytest.importorskip("ccdproc")
    from astropy.modeling import models
    from astropy.nddata import CCDData

    path = shared_data / "ccdproc-samples" / "a8280271.fits"
    data = fits.getdata(path).astype(np.float32)
    header = fits.getheader(path)
    ccd = CCDData(data, unit="adu")
    for method, kwargs in (
        ("median", {"median": True}),
        ("mean", {"median": False}),
        ("fit", {"median": True, "model": models.Polynomial1D(3)}),
    ):
        plan = plan_overscan(header, data.shape, CalibrationConfig(overscan=method, overscan_order=3))  # type: ignore[arg-type]
        ours = apply_overscan(data, plan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = ccdproc.subtract_overscan(ccd, fits_section=header["BIASSEC"], overscan_axis=1, **kwargs)
            peer = ccdproc.trim_image(peer, fits_section=header["TRIMSEC"])
        assert ours.shape == peer.shape == (520, 512)
        np.testing.assert_allclose(ours, peer.data, atol=1e-3)
        assert trim(data, plan.trimsec).shape == ours.shape  # type: ignore[arg-type]
