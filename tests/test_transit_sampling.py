"""The fast posterior (issue 22): the model skips points out of transit, supersamples only long
exposures, and the chain stops on its autocorrelation time; the posterior stays the same."""

from __future__ import annotations

import math

import emcee
import numpy as np
import pytest

from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import (
    FitOptions,
    TransitCurve,
    TransitFit,
    TransitPriors,
    fit_transit,
    sampling,
)
from nightpipe.timeseries.transit import curve as curve_module


@pytest.mark.parametrize(
    ("ecc", "omega", "exptime", "spread"),
    [(0.0, 90.0, None, 0.01), (0.159, 50.0, 600.0, 0.03), (0.3, 200.0, None, 0.05)],
)
def test_model_on_candidate_points_equals_the_full_model(
    ecc: float, omega: float, exptime: float | None, spread: float
) -> None:
    """Random parameter sets (wide in every parameter, two transits in the span): the flux with the
    out-of-transit points skipped is bit for bit the flux computed everywhere."""
    rng = np.random.default_rng(3)
    t0, period = 2458326.0, 3.3
    time = np.sort(np.r_[t0 + rng.uniform(-0.5, 0.5, 500), t0 + 2 * period + rng.uniform(-0.5, 0.5, 300)])
    curve = TransitCurve(time, TransitPriors(period=period, ecc=ecc, omega=omega), exptime)
    w = 200
    sets = (
        t0 + rng.normal(0, spread, w),
        rng.uniform(0.01, 0.25, w),
        rng.uniform(4.0, 30.0, w),
        rng.uniform(75.0, 90.0, w),
        rng.uniform(0.05, 0.6, w),
        rng.uniform(0.0, 0.3, w),
    )
    fast = curve.batch(*sets)
    skipped = curve.time.size - curve.candidates(sets[0], sets[1], sets[2]).size
    curve.candidates = lambda *a: np.arange(curve.time.size)  # type: ignore[method-assign]
    full = curve.batch(*sets)
    assert (full < 1).any() and skipped > 0.2 * curve.time.size  # transits in it, and points skipped
    np.testing.assert_array_equal(fast, full)


def test_supersampling_only_beyond_two_minutes() -> None:
    factors = [curve_module.supersample_factor(t) for t in (None, 58.8, 120.0, 121.0, 1800.0)]
    assert factors == [1, 1, 1, 2, 15]


def _light_curve(seed: int) -> tuple[LightCurve, TransitPriors]:
    """One TESS-like transit at 2-minute cadence (depth 1 %, 1,000 ppm noise), a linear trend."""
    rng = np.random.default_rng(seed)
    pri = TransitPriors(
        period=3.3, t0=2458326.0, a_rs=10.0, a_rs_err=0.3, inc=88.0, inc_err=0.8, u=(0.4, 0.25), u_err=0.1
    )
    time = 2458326.0 + np.arange(-0.25, 0.25, 120 / 86400)
    transit = TransitCurve(time, pri, 120.0)(2458326.0003, 0.1, 10.0, 88.0, 0.4, 0.25)
    flux = transit * (1 + 0.002 * (time - time.mean())) + rng.normal(0, 1e-3, time.size)
    return LightCurve(time=time, flux=flux, flux_err=np.full(time.size, 1e-3)), pri


def _old_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler and model of before: a fixed-length chain, 20-s sub-exposures from 30 s."""
    monkeypatch.setattr(sampling, "converged", lambda *a: False)
    monkeypatch.setattr(
        curve_module, "supersample_factor", lambda t: 1 if t is None or t < 30 else min(15, math.ceil(t / 20))
    )


def _differences(a: TransitFit, b: TransitFit) -> dict[str, tuple[float, float]]:
    """Per parameter: median shift in units of ``a``'s sigma, and the ratio of the 68 % widths."""
    pa, pb = a.params, b.params
    return {n: ((pb[n].median - pa[n].median) / pa[n].err, pb[n].err / pa[n].err) for n in a.sample_names}


@pytest.mark.slow
def test_same_posterior_as_the_fixed_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Medians within 0.2 sigma and widths within 15 % of the fixed 1,500-step chain with 6-fold
    supersampling, on no more model evaluations; a second noise draw of the same planet (the control)
    moves the posterior by more, so the comparison can fail."""
    lc, pri = _light_curve(1)
    opts = FitOptions(detrend=("time",), walkers=64, steps=1500, seed=3, exptime_s=120.0)
    new = fit_transit(lc, pri, opts)
    with monkeypatch.context() as m:
        _old_way(m)
        old = fit_transit(lc, pri, opts)
        other = fit_transit(_light_curve(2)[0], pri, opts)
    assert old.extra["sampler"]["steps"] == 1500 and not old.extra["sampler"]["stopped_on_autocorr"]
    assert new.extra["sampler"]["model_evaluations"] <= old.extra["sampler"]["model_evaluations"]
    diff = _differences(old, new)
    for name, (shift, width) in diff.items():
        assert abs(shift) < 0.2, (name, diff)
        assert abs(width - 1) < 0.15, (name, diff)
    control = _differences(old, other)
    assert max(abs(s) for s, _ in control.values()) > 0.2, control


def test_capped_chain_is_the_old_chain_draw_for_draw() -> None:
    """When the rule never stops the chain, the chunked run equals one emcee run of all the steps
    (same start, same seeded proposals): the cap reproduces the old sampler exactly."""
    lc, pri = _light_curve(1)
    opts = FitOptions(detrend=("time",), walkers=16, steps=250, seed=5, exptime_s=120.0, sampler="none")
    fit = fit_transit(lc, pri, opts)
    from nightpipe.timeseries.transit.fit import _layout_and_start

    build, _ = _layout_and_start(fit.lc, pri, opts)
    problem = build(fit.detrend_vectors, fit.used, fit.lc.flux_err)
    theta = np.array([fit.params[n].best for n in fit.sample_names])
    original = sampling.converged
    try:
        sampling.converged = lambda *a: False  # type: ignore[assignment]
        chain, _, info = sampling.sample_posterior(problem, theta, opts)
    finally:
        sampling.converged = original
    start = sampling.start_walkers(problem, theta, 16, 5)
    ref = emcee.EnsembleSampler(16, theta.size, problem.log_prob_batch, vectorize=True)
    ref.random_state = np.random.RandomState(5).get_state()
    ref.run_mcmc(start, 250, progress=False)
    assert info["steps"] == 250 and info["burn"] == 125
    np.testing.assert_array_equal(chain, ref.get_chain(discard=125, flat=True))
