"""Transit model, joint fit with detrending, BIC selection, posterior: against batman and known truth."""

from __future__ import annotations

import math

import batman
import numpy as np
import pytest

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.detrend import detrend_vectors, find_meridian_flip, select_vectors
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.simulate import TransitTruth, night_times, simulate_lightcurve
from nightpipe.timeseries.transit import (
    FitOptions,
    TransitCurve,
    TransitPriors,
    binned_scatter,
    fit_transit,
    solve_systematics,
)

QUICK = FitOptions(walkers=16, steps=300, seed=7, exptime_s=60.0)


@pytest.mark.parametrize(
    ("ecc", "omega", "exptime"), [(0.0, 90.0, None), (0.159, 50.0, None), (0.3, 200.0, 120.0)]
)
def test_transit_curve_matches_batman(ecc: float, omega: float, exptime: float | None) -> None:
    time = night_times(200, cadence_s=120)
    pri = TransitPriors(period=2.15, ecc=ecc, omega=omega)
    curve = TransitCurve(time, pri, exptime)
    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = 2458107.71, 2.15, 0.15, 5.3, 88.5
    params.ecc, params.w, params.limb_dark, params.u = ecc, omega, "quadratic", [0.4, 0.26]
    kwargs = {} if exptime is None else {"supersample_factor": curve.supersample, "exp_time": exptime / 86400}
    ref = batman.TransitModel(params, time, **kwargs).light_curve(params)
    ours = curve(2458107.71, 0.15, 5.3, 88.5, 0.4, 0.26)
    assert ref.min() < 0.99  # the transit is in the window
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    batch = curve.batch(*(np.array([v, v]) for v in (2458107.71, 0.15, 5.3, 88.5, 0.4, 0.26)))
    np.testing.assert_allclose(batch[1], ours)


def test_solve_systematics_recovers_coefficients() -> None:
    rng = np.random.default_rng(0)
    A = np.column_stack([np.ones(50), rng.normal(size=50)])
    transit = 1 - 0.02 * (np.arange(50) > 25)
    flux = transit * (A @ np.array([1.01, 0.003]))
    coef, model = solve_systematics(transit, flux, np.ones(50), A)
    np.testing.assert_allclose(coef, [1.01, 0.003], rtol=1e-10)
    np.testing.assert_allclose(model, flux, rtol=1e-12)


def test_select_vectors_prefers_the_useful_one() -> None:
    def fit(vs: tuple[str, ...]) -> tuple[float, int]:
        return 100.0 - 60.0 * ("a" in vs) - 0.5 * ("b" in vs), 1 + len(vs)

    chosen, history = select_vectors(fit, ["a", "b"], 100)
    assert chosen == ("a",)
    assert history[0].vectors == ()
    assert min(h.bic for h in history) == pytest.approx(40.0 + 2 * math.log(100))


def test_meridian_flip_found_from_a_jump() -> None:
    x = np.concatenate([np.linspace(100, 120, 30), np.linspace(400, 420, 30)])
    y = np.full(60, 200.0)
    assert find_meridian_flip(x, y) == 30
    assert find_meridian_flip(np.linspace(100, 370, 60), y) is None  # a steady drift is not a flip
    lc = LightCurve(time=np.arange(60.0), flux=np.ones(60), flux_err=np.ones(60), aux={"x": x, "y": y})
    vec = detrend_vectors(lc, ["flip", "time"])
    assert set(vec) == {"flip", "time", "time2"}
    assert vec["flip"][29] < 0 < vec["flip"][30]


def test_flip_found_from_the_pier_side_or_a_jump_of_the_field_rotation() -> None:
    from nightpipe.timeseries.flips import find_flip

    rotation = np.r_[np.full(30, 0.3), np.full(30, -179.6)]  # a 180-degree turn after frame 29
    flip = find_flip(rotation)
    assert flip is not None and (flip.index, flip.source) == (30, "field rotation")
    assert abs(flip.turn_deg) == pytest.approx(179.9)
    # an alt-azimuth mount turning the field by 2 degrees a frame, through +-180: no flip
    assert find_flip(np.mod(np.linspace(120.0, 240.0, 61) + 180.0, 360.0) - 180.0) is None
    # the mount's PIERSIDE decides, even with no rotation known
    sides = ["EAST"] * 12 + [None] + ["WEST"] * 7
    flip = find_flip(np.full(20, np.nan), sides)
    assert flip is not None and (flip.index, flip.turn_deg, flip.source) == (13, 180.0, "PIERSIDE")
    assert find_flip(np.zeros(20), ["WEST"] * 20) is None  # one side all night: no flip


def test_shift_vectors_follow_the_drift_across_a_flip() -> None:
    from nightpipe.timeseries.detrend import shifts_across_flip

    n, at = 80, 50
    drift_x, drift_y = np.linspace(100.0, 370.0, n), 200.0 + 20 * np.sin(np.linspace(0, 3, n))
    x, y = drift_x.copy(), drift_y.copy()
    x[at:], y[at:] = 649.0 - x[at:] + 12.0, 499.0 - y[at:] - 7.0  # turned by 180 deg, re-pointed
    xs, ys = shifts_across_flip(x, y, at, 180.0)
    step = (np.arange(n) >= at).astype(float)
    for shift, drift, raw in ((xs, drift_x, x), (ys, drift_y, y)):
        # the drift is the shift vector plus a step: nothing of it is lost at the flip
        design = np.column_stack([np.ones(n), step, shift])
        resid = drift - design @ np.linalg.lstsq(design, drift, rcond=None)[0]
        assert np.max(np.abs(resid)) < 1e-9
        # the raw pixel position, even with the step, cannot follow the drift
        design = np.column_stack([np.ones(n), step, raw])
        resid = drift - design @ np.linalg.lstsq(design, drift, rcond=None)[0]
        assert np.max(np.abs(resid)) > 1.0
    lc = LightCurve(
        time=np.arange(float(n)), flux=np.ones(n), flux_err=np.ones(n), aux={"x": x, "y": y},
        meta={"flip_index": at, "flip_turn_deg": 180.0},
    )  # fmt: skip
    vec = detrend_vectors(lc, ["xshift", "flip"])
    assert np.corrcoef(vec["xshift"], xs)[0, 1] == pytest.approx(1.0)


def test_fit_recovers_injected_transit_within_errors() -> None:
    truth = TransitTruth(rp_rs=0.15, noise=0.004, airmass_coef=-0.03)
    lc = simulate_lightcurve(truth, seed=11)
    fit = fit_transit(lc, truth.priors(t0=truth.tc + 0.001), QUICK)  # ephemeris 1.4 min off
    rp, tc = fit.params["rp_rs"], fit.params["tc"]
    assert abs(rp.median - truth.rp_rs) < 3 * rp.err
    assert abs(tc.median - truth.tc) < 3 * tc.err
    assert rp.err < 0.01 and tc.err * 1440 < 3
    assert "airmass" in fit.detrend_vectors
    # the residual scatter matches the injected noise within 15 %
    assert abs(fit.rms / truth.noise - 1) < 0.15
    # white noise: the 10-minute binned scatter is near its expectation
    assert 0.6 < fit.binned_rms / fit.binned_expected < 1.5
    oc = fit.o_minus_c_min
    assert oc is not None and abs(oc[0] - (tc.median - truth.tc - 0.001) * 1440) < 1e-6
    assert fit.samples is not None and fit.samples.shape[1] == 6
    assert 0.15 < (fit.acceptance or 0) < 0.8


def test_fit_rejects_outliers_by_the_stated_rule() -> None:
    truth = TransitTruth(noise=0.003)
    lc = simulate_lightcurve(truth, seed=5)
    flux = lc.flux.copy()
    flux[[10, 70, 120]] += np.array([0.05, -0.06, 0.04])
    fit = fit_transit(lc.with_flux(flux, lc.flux_err), truth.priors(), FitOptions(sampler="none"))
    assert not fit.used[[10, 70, 120]].any()
    assert fit.used.sum() >= len(lc) - 6
    assert "MAD" in fit.outlier_rule


def test_fit_without_errors_estimates_them() -> None:
    truth = TransitTruth(noise=0.005)
    lc = simulate_lightcurve(truth, seed=3)
    lc = lc.with_flux(lc.flux, np.full(len(lc), np.nan))
    fit = fit_transit(lc, truth.priors(), FitOptions(sampler="none"))
    assert fit.extra["errors_known"] is False
    assert fit.lc.flux_err[0] == pytest.approx(truth.noise, rel=0.2)
    # the final errors make the chosen model's reduced chi-square 1
    dof = fit.used.sum() - 6 - 1 - len(fit.detrend_vectors)
    chi2 = np.sum((fit.residuals / fit.lc.flux_err[fit.used]) ** 2)
    assert chi2 / dof == pytest.approx(1.0, rel=0.05)


def test_fit_is_reproducible_with_a_seed() -> None:
    truth = TransitTruth()
    lc = simulate_lightcurve(truth, seed=2)
    opts = FitOptions(walkers=12, steps=120, seed=3)
    a = fit_transit(lc, truth.priors(), opts)
    b = fit_transit(lc, truth.priors(), opts)
    assert a.samples is not None and b.samples is not None
    np.testing.assert_array_equal(a.samples, b.samples)


def test_too_few_points_and_bad_period_are_typed_errors() -> None:
    lc = simulate_lightcurve(n=10)
    with pytest.raises(TimeseriesError, match="at least 12"):
        fit_transit(lc, TransitTruth().priors(), FitOptions(sampler="none"))
    with pytest.raises(TimeseriesError, match="period"):
        TransitPriors(period=-1.0)


def test_binned_scatter_of_white_noise() -> None:
    rng = np.random.default_rng(4)
    time = night_times(400, cadence_s=60)
    resid = rng.normal(0, 0.01, 400)
    rms, expected = binned_scatter(time, resid, 10.0)
    assert expected == pytest.approx(0.01 / math.sqrt(10), rel=0.1)
    assert 0.7 < rms / expected < 1.3


def test_fit_does_not_depend_on_the_flux_unit() -> None:
    """A light curve in counts fits as the same curve normalised (errors scale with the flux)."""
    truth = TransitTruth()
    lc = simulate_lightcurve(truth, seed=4)
    opts = FitOptions(walkers=12, steps=150, seed=1, exptime_s=60.0)
    a = fit_transit(lc, truth.priors(), opts)
    b = fit_transit(lc.with_flux(lc.flux * 1e5, lc.flux_err * 1e5), truth.priors(), opts)
    assert b.chi2_red == pytest.approx(a.chi2_red, rel=1e-6) and 0.5 < a.chi2_red < 2.0
    assert b.params["rp_rs"].median == pytest.approx(a.params["rp_rs"].median, rel=1e-6)
