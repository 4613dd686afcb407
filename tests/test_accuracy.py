"""Errors that mean what they say, and transits that cannot hide (issue 25): the red-noise factor,
comparison stars that follow the seeing, a clipped target, and injection-recovery on a night."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nightpipe.config import TimeseriesConfig
from nightpipe.errors import TimeseriesError
from nightpipe.frames.flags import PixelFlag
from nightpipe.report.injection_section import injection_section
from nightpipe.timeseries.comparisons import choose_comparisons
from nightpipe.timeseries.differential import ApertureChoice
from nightpipe.timeseries.injection import injection_recovery, write_injection
from nightpipe.timeseries.simulate import TransitTruth, simulate_lightcurve
from nightpipe.timeseries.transit import FitOptions, TransitPriors, fit_transit
from nightpipe.timeseries.transit.rednoise import red_noise_beta
from nightpipe.timeseries.usable import usable_frames

TRUTH = TransitTruth()
PRIORS = TransitPriors(period=TRUTH.period, t0=TRUTH.tc)
QUICK = FitOptions(sampler="none", exptime_s=60.0)


def _red(seed: int, amplitude: float) -> np.ndarray:
    """A slow correlated wiggle (a 40-minute random walk, smoothed)."""
    rng = np.random.default_rng(seed)
    walk = np.convolve(rng.normal(0, 1, 200), np.ones(12) / 12, mode="same")[:140]
    return amplitude * walk / np.std(walk)


def test_white_noise_has_beta_one_and_red_noise_more() -> None:
    t = np.arange(300) / 480.0  # 3-minute cadence
    rng = np.random.default_rng(4)
    white = rng.normal(0, 1e-3, 300)
    assert red_noise_beta(t, white, (10.0, 20.0, 30.0)) < 1.3
    wiggle = np.convolve(rng.normal(0, 1, 320), np.ones(15) / 15, mode="same")[:300]
    red = white + 1e-3 * wiggle / np.std(wiggle)
    assert red_noise_beta(t, red, (10.0, 20.0, 30.0)) > 1.8


def test_the_fit_errors_grow_with_the_red_noise() -> None:
    lc = simulate_lightcurve(TRUTH, seed=5)
    white = fit_transit(lc, PRIORS, QUICK)
    red_lc = lc.with_flux(lc.flux + _red(5, 0.004), lc.flux_err)
    red = fit_transit(red_lc, PRIORS, QUICK)
    assert white.red_noise_beta < 1.3
    assert red.red_noise_beta > 1.5
    # the errors are the white ones scaled by the scatter and then by beta
    assert red.params["tc"].err > 1.3 * white.params["tc"].err
    summary = red.summary()
    assert summary["red_noise_beta"] == pytest.approx(red.red_noise_beta)
    assert "overestimated" in summary["chi2_red_meaning"]


def test_a_comparison_following_the_seeing_is_down_weighted_and_said_so() -> None:
    rng = np.random.default_rng(2)
    frames, stars = 80, 8
    fwhm = 3.0 + 1.5 * np.exp(-0.5 * ((np.arange(frames) - 40) / 10.0) ** 2)  # peaks mid-night
    flux = 1e5 * (1 + rng.normal(0, 1e-3, (frames, stars)))
    flux[:, 3] *= 1 + 0.002 * (fwhm - 3.0)  # a neighbour's wing enters its aperture
    plain = choose_comparisons(flux, 0, max_comparisons=7)
    choice = choose_comparisons(flux, 0, max_comparisons=7, seeing=fwhm)
    k = list(choice.stars).index(3)
    assert choice.weights[k] < 0.2 * plain.weights[list(plain.stars).index(3)]
    others = [w for s, w in zip(choice.stars, choice.weights, strict=True) if s != 3]
    assert min(others) > 5 * choice.weights[k]
    line = next(r for r in choice.report() if r.startswith("star 3:"))
    assert "follows the seeing" in line


def _aperture(_: np.ndarray) -> ApertureChoice:
    return ApertureChoice(0, (3.0,), (0.01,), "test")


def test_frames_with_a_clipped_target_go_and_a_mostly_clipped_target_is_refused() -> None:
    n = 40
    frames = [f"f{i}" for i in range(n)]
    time = 2458000.0 + np.arange(n) / 100.0
    rel = np.ones((n, 1))
    flags = np.zeros(n, dtype=np.int64)
    flags[[3, 7]] = int(PixelFlag.SATURATED)
    good, _, _, dropped = usable_frames(frames, time, rel, _aperture, 4.0, flags)
    assert not good[3] and not good[7] and good.sum() == n - 2
    assert sum("saturated" in why for _, why in dropped) == 2
    flags[:20] = int(PixelFlag.NONLINEAR)
    with pytest.raises(TimeseriesError, match="saturated or non-linear in 20 of 40"):
        usable_frames(frames, time, rel, _aperture, 4.0, flags)


def test_injection_recovery_on_a_night_and_its_report_section(tmp_path: Path) -> None:
    lc = simulate_lightcurve(TRUTH, seed=3)
    fit = fit_transit(lc, PRIORS, QUICK)
    result = injection_recovery(fit, PRIORS, QUICK, n_positions=4)
    assert len(result["injections"]) == 4
    depth = TRUTH.rp_rs**2
    assert result["expected_depth"] == pytest.approx(fit.params["rp_rs"].median ** 2)
    # recovered depths are unbiased within their spread and the reported errors cover the spread
    assert abs(result["depth_bias"]) < 3 * result["depth_spread"] / np.sqrt(4) + 1e-4
    assert result["depth_err_mean"] > 0.5 * result["depth_spread"]
    assert abs(result["tc_bias_min"]) < 3 * result["tc_err_mean_min"]
    # 0.4 % per 3-minute point: a quarter of the 2.3 % depth is seen, 1/16 is not
    assert result["ladder_complete"]
    assert 0.1 * depth < result["shallowest_detected_depth"] < 0.5 * depth
    # a noisier night detects less
    noisy = lc.with_flux(lc.flux + np.random.default_rng(9).normal(0, 0.008, len(lc)), lc.flux_err)
    noisy_fit = fit_transit(noisy, PRIORS, QUICK)
    worse = injection_recovery(noisy_fit, PRIORS, QUICK, n_positions=2)
    assert worse["shallowest_detected_depth"] > result["shallowest_detected_depth"]

    folder = tmp_path / "lightcurves" / "2017-12-19"
    paths = write_injection(folder, "SIM-1", fit, PRIORS, QUICK, TimeseriesConfig(injections=3))
    written = json.loads(paths["injection"].read_text())
    assert len(written["injections"]) == 3
    page = injection_section(tmp_path, "2017-12-19")
    assert "SIM-1" in page and "shallowest depth" in page and page.count("<tr>") == 4
    assert write_injection(folder, "X", fit, PRIORS, QUICK, TimeseriesConfig(injections=0)) == {}
    assert "no injection-recovery" in injection_section(tmp_path, "2017-12-20")


def test_options_of_a_quick_fit_are_the_nights_with_least_squares() -> None:
    opts = replace(QUICK, sampler="emcee")
    lc = simulate_lightcurve(TRUTH, seed=7)
    fit = fit_transit(lc, PRIORS, QUICK)
    result = injection_recovery(fit, PRIORS, opts, n_positions=2)  # must not run the sampler
    assert len(result["injections"]) == 2


def test_the_simulated_seeing_peaks_at_mid_transit_and_is_unchanged_elsewhere() -> None:
    from nightpipe.simulate.field import build_field
    from nightpipe.simulate.options import SimOptions
    from nightpipe.simulate.series import build_series

    base = SimOptions(seed=3)
    base = replace(base, camera=replace(base.camera, size=128), site=replace(base.site, n_lights=40))
    peaked = replace(base, sky=replace(base.sky, fwhm_peak=0.5, fwhm_peak_hours=0.5))
    field = build_field(base, np.random.default_rng(1))
    plain = build_series(base, field, np.random.default_rng(2))
    peak = build_series(peaked, field, np.random.default_rng(2))
    ratio = peak.fwhm_arcsec / plain.fwhm_arcsec
    hours = np.abs(peak.bjd - peak.t0_bjd) * 24.0
    assert ratio[np.argmin(hours)] == pytest.approx(1.5, abs=0.02)
    assert np.allclose(ratio[hours > 2.5], 1.0, atol=2e-3)
    assert np.array_equal(peak.star_e, plain.star_e)  # the same night otherwise
