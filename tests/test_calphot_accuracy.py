"""Calibrated vs catalogue magnitudes: contamination by neighbours and the night agreement figures."""

from __future__ import annotations

import numpy as np
import pytest

from nightpipe.calphot.accuracy import (
    FWHM_TO_SIGMA,
    aperture_fraction,
    catalog_agreement,
    catalog_contamination,
    neighbour_contamination,
    usable_measurements,
)
from nightpipe.frames.flags import PixelFlag


def test_aperture_fraction_of_a_gaussian() -> None:
    fwhm = 2.0
    sigma = fwhm * FWHM_TO_SIGMA
    centred = aperture_fraction(np.array([0.0]), 3 * sigma, fwhm)[0]
    assert centred == pytest.approx(1 - np.exp(-4.5), rel=1e-9)
    far = aperture_fraction(np.array([0.0, 2.0, 5.0, 30.0]), 5.0, fwhm)
    assert np.all(np.diff(far) < 0) and far[-1] < 1e-12
    # a star on the aperture's edge puts about half its flux inside
    assert aperture_fraction(np.array([5.0]), 5.0, fwhm)[0] == pytest.approx(0.5, abs=0.05)


def test_neighbour_contamination() -> None:
    x = np.array([100.0, 104.0, 300.0, 500.0])
    y = np.array([100.0, 100.0, 300.0, 500.0])
    flux = np.array([1000.0, 100.0, 500.0, -5.0])
    c = neighbour_contamination(x, y, flux, 5.0, 2.0)
    share = aperture_fraction(np.array([4.0]), 5.0, 2.0)[0] / aperture_fraction(np.array([0.0]), 5.0, 2.0)[0]
    assert c[0] == pytest.approx(0.1 * share) and c[1] == pytest.approx(10.0 * share)
    assert c[2] == 0.0 and np.isnan(c[3])  # isolated; no flux
    assert np.all(neighbour_contamination(x, y, flux, 5.0, np.nan)[:3] == 0.0)  # no FWHM: nothing known


def test_catalog_contamination_finds_an_unresolved_pair() -> None:
    ra = np.array([30.0, 30.0 + 8.0 / 3600 / np.cos(np.radians(46.0)), 30.3])
    dec = np.array([46.0, 46.0, 46.2])
    c = catalog_contamination(ra, dec, np.array([10.0, 10.0, 10.0]), 5.0, 2.0, pixel_scale_arcsec=5.0)
    assert c[0] == pytest.approx(c[1]) and c[0] > 0.5 and c[2] == 0.0


def test_usable_measurements() -> None:
    flags = np.array(
        [
            0,
            PixelFlag.SATURATED,
            PixelFlag.NONLINEAR,
            PixelFlag.BLENDED | PixelFlag.NEIGHBOUR,
            PixelFlag.BLENDED,
            0,
        ]
    )
    contam = np.array([0.0, 0.0, 0.0, 0.002, 0.3, 0.0])
    cat = np.array([np.nan, 0.0, 0.0, 0.0, 0.0, 0.2])
    assert usable_measurements(flags, contam, cat).tolist() == [True, False, False, True, False, False]


def test_catalog_agreement_night_means() -> None:
    rng = np.random.default_rng(3)
    n_stars, n_frames = 40, 30
    cat = np.linspace(9.0, 12.0, n_stars)
    offset = rng.normal(0, 0.1, n_stars)  # what the stars really differ from the catalogue by
    ids = np.tile(np.array([f"s{i}" for i in range(n_stars)]), n_frames)
    cat_mag = np.tile(cat, n_frames)
    mag = cat_mag + np.tile(offset, n_frames) + rng.normal(0, 0.05, ids.size)
    usable = np.ones(ids.size, bool)
    usable[ids == "s0"] = False  # e.g. saturated all night
    usable[(ids == "s1") & (np.arange(ids.size) >= 3 * n_stars)] = False  # usable in 3 frames only
    mag[ids == "s0"] += 5.0  # unusable measurements must not count
    res = catalog_agreement(
        ids, cat_mag, np.full(ids.size, 0.02), mag, np.full(ids.size, 0.05), usable, max_cat_mag=11.0
    )
    bright = (cat < 11.0) & (np.arange(n_stars) >= 2)
    assert res.n_stars == bright.sum() and len(res.stars) == res.n_stars
    assert set(res.stars["cat_id"]) == {f"s{i}" for i in np.flatnonzero(bright)}
    truth = offset[bright]
    assert res.rms == pytest.approx(np.sqrt(np.mean(truth**2)), abs=0.01)
    assert res.median_offset == pytest.approx(np.median(truth), abs=0.02)
    assert np.all(res.stars["n_frames"] == n_frames)
    assert np.all(np.diff(np.asarray(res.stars["cat_mag"])) > 0)
    # the errors alone: 0.02 from the catalogue, 0.05 / sqrt(30) from the night mean
    assert res.expected_rms == pytest.approx(np.hypot(0.02, 0.05 / np.sqrt(n_frames)), rel=0.25)
    assert res.excess_rms == pytest.approx(np.sqrt(res.rms**2 - res.expected_rms**2))
    assert "stars < 11" in res.summary()


def test_catalog_agreement_without_stars() -> None:
    res = catalog_agreement(
        np.array(["a"]),
        np.array([12.0]),
        np.array([0.1]),
        np.array([12.1]),
        np.array([0.1]),
        np.array([True]),
    )
    assert res.n_stars == 0 and np.isnan(res.rms) and "no catalogue star" in res.summary()
