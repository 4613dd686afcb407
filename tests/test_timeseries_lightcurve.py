"""The LightCurve container: immutability, selection, normalisation, binning."""

from __future__ import annotations

import numpy as np
import pytest

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.lightcurve import LightCurve, bin_arrays


def make() -> LightCurve:
    t = 2458107.5 + np.arange(30) / 1440.0  # one point a minute
    return LightCurve(
        time=t,
        flux=np.linspace(2.0, 2.3, 30),
        flux_err=np.full(30, 0.02),
        jd_utc=t - 0.001,
        aperture_flux=np.ones((30, 3)),
        aux={"airmass": np.linspace(1.5, 1.2, 30)},
        meta={"target": "T"},
    )


def test_operations_return_new_objects() -> None:
    lc = make()
    norm = lc.normalize()
    assert norm is not lc and lc.flux[0] == 2.0
    assert np.median(norm.flux) == pytest.approx(1.0)
    assert norm.meta["normalised_by"] == pytest.approx(np.median(lc.flux))
    sel = lc.select(lc.time < lc.time[10])
    assert len(sel) == 10 and sel.aperture_flux is not None and sel.aperture_flux.shape == (10, 3)
    assert sel.aux["airmass"].size == 10 and sel.jd_utc is not None and sel.jd_utc.size == 10
    with pytest.raises(AttributeError):
        lc.flux = np.zeros(30)  # type: ignore[misc]


def test_shapes_are_checked() -> None:
    with pytest.raises(TimeseriesError, match="flux_err"):
        LightCurve(time=[1, 2, 3], flux=[1, 2, 3], flux_err=[1, 2])
    with pytest.raises(TimeseriesError, match="airmass"):
        LightCurve(time=[1, 2], flux=[1, 2], flux_err=[1, 1], aux={"airmass": [1.0]})


def test_finite_and_sort() -> None:
    lc = LightCurve(time=[3.0, 1.0, 2.0, 4.0], flux=[1.0, np.nan, 2.0, 3.0], flux_err=[1.0, 1.0, 1.0, 0.0])
    clean = lc.finite().sort()
    assert clean.time.tolist() == [2.0, 3.0]


def test_binning_means_and_errors() -> None:
    lc = make()
    binned = lc.bin(10.0)
    assert len(binned) == 3
    assert binned.meta["n_per_bin"] == [10, 10, 10]
    np.testing.assert_allclose(binned.flux[0], lc.flux[:10].mean())
    np.testing.assert_allclose(binned.aux["airmass"][0], lc.aux["airmass"][:10].mean())
    # error of the mean from the scatter inside the bin
    np.testing.assert_allclose(binned.flux_err[0], lc.flux[:10].std(ddof=1) / np.sqrt(10))
    _, _, err, counts, _ = bin_arrays(np.array([0.0]), np.array([1.0]), np.array([0.1]), 5.0)
    assert counts.tolist() == [1] and err[0] == pytest.approx(0.1)
    with pytest.raises(TimeseriesError):
        lc.bin(0)
