"""Transit fitting: batman model x linear systematics, least squares, then an emcee posterior.

The model of the relative flux is ``F(t) = T(t; tc, Rp/Rs, a/Rs, i, u1, u2) * S(t)`` where ``T`` is
a batman transit with quadratic limb darkening (computed once per call on the light curve's fixed
time grid, supersampled over the exposure) and ``S = A c`` is the linear systematics model of
:mod:`nightpipe.timeseries.detrend`. For each transit shape the coefficients ``c`` are solved by
weighted linear least squares (profiled out), so the systematics are fitted jointly with the
transit at the cost of one small linear solve per likelihood call.

Priors: ``tc`` uniform over the observed span; ``Rp/Rs`` uniform on (0, 0.5); ``a/Rs`` and ``i``
Gaussian around known values when the target gives them (widths from the target or 5 % and 1
degree), else uniform with ``b = a cos i < 1 + Rp/Rs``; ``u1, u2`` fixed when given without an
error, Gaussian when given with one, else uniform inside the physical region
(``u1 > 0``, ``u1 + u2 < 1``, ``u1 + 2 u2 > 0``).

Outliers: a point whose residual from the best fit exceeds ``outlier_sigma`` times the robust
standard deviation (1.4826 x MAD) of the residuals is rejected, and the fit is repeated until no
point changes (at most 5 rounds). Errors (the point-to-point scatter when the input has none) are rescaled
so that the baseline fit (transit + linear time) has a reduced chi-square of 1 for the BIC
selection, which needs realistic errors, and finally so that the chosen model has a reduced
chi-square of 1 (``error_scale`` reports the factor, ``chi2_red`` the value with the input errors).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.detrend import BicStep, design_matrix, detrend_vectors, select_vectors
from nightpipe.timeseries.lightcurve import LightCurve, bin_arrays
from nightpipe.timeseries.transit.curve import TransitCurve
from nightpipe.timeseries.transit.likelihood import FitProblem
from nightpipe.timeseries.transit.optimise import (
    MAX_CLIP_ROUNDS,
    covariance_scale,
    fit_and_clip,
    least_squares_fit,
    robust_std,
)
from nightpipe.timeseries.transit.priors import PARAM_NAMES, FitOptions, TransitPriors, starting_point

log = logging.getLogger("nightpipe.timeseries.transit")  # the name its log lines have always carried
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ParamEstimate:
    """A parameter's posterior median, 68 % interval half-widths and best-fit value."""

    median: float
    minus: float
    plus: float
    best: float

    @property
    def err(self) -> float:
        """Symmetrised 1-sigma error."""
        return 0.5 * (self.minus + self.plus)

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for JSON."""
        return {"median": self.median, "minus": self.minus, "plus": self.plus, "best": self.best}


@dataclass(frozen=True, eq=False)
class TransitFit:
    """The result of :func:`fit_transit` (all arrays on the points kept, in time order)."""

    lc: LightCurve
    used: NDArray[np.bool_]
    params: dict[str, ParamEstimate]
    fixed: dict[str, float]
    detrend_vectors: tuple[str, ...]
    detrend_coef: FloatArray
    bic_history: list[BicStep]
    transit_model: FloatArray
    systematics: FloatArray
    residuals: FloatArray
    error_scale: float
    chi2_red: float
    rms: float
    binned_rms: float
    binned_expected: float
    bin_minutes: float
    predicted_tc: float | None
    predicted_tc_err: float | None
    samples: FloatArray | None
    sample_names: tuple[str, ...]
    acceptance: float | None
    outlier_rule: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detrended_flux(self) -> FloatArray:
        """Flux of the kept points divided by the systematics model."""
        return self.lc.flux[self.used] / self.systematics

    @property
    def o_minus_c_min(self) -> tuple[float, float] | None:
        """Observed minus calculated mid-time and its error, minutes (None without ephemeris)."""
        if self.predicted_tc is None:
            return None
        tc = self.params["tc"]
        err = math.hypot(tc.err, self.predicted_tc_err or 0.0)
        return (tc.median - self.predicted_tc) * 1440.0, err * 1440.0

    def value(self, name: str) -> float:
        """Median of a free parameter or the value of a fixed one."""
        return self.params[name].median if name in self.params else self.fixed[name]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the fit."""
        oc = self.o_minus_c_min
        return {
            "target": self.lc.meta.get("target"),
            "time_scale": self.lc.time_scale,
            "time_source": self.lc.meta.get("time_source"),
            "n_points": int(self.used.size),
            "n_used": int(self.used.sum()),
            "outlier_rule": self.outlier_rule,
            "params": {k: v.as_dict() for k, v in self.params.items()},
            "fixed": self.fixed,
            "derived": self.extra.get("derived", {}),
            "orbit": {k: self.extra.get(k) for k in ("period", "ecc", "omega")},
            "detrend": {
                "vectors": list(self.detrend_vectors),
                "coefficients": [float(c) for c in self.detrend_coef],
                "bic_history": [
                    {"vectors": list(s.vectors), "chi2": s.chi2, "n_params": s.n_params, "bic": s.bic}
                    for s in self.bic_history
                ],
            },
            "error_scale": self.error_scale,
            "chi2_red": self.chi2_red,
            "rms": self.rms,
            "binned": {
                "minutes": self.bin_minutes,
                "rms": self.binned_rms,
                "white_noise_expected": self.binned_expected,
                "beta": self.binned_rms / self.binned_expected if self.binned_expected > 0 else None,
            },
            "ephemeris": {
                "predicted_tc": self.predicted_tc,
                "predicted_tc_err": self.predicted_tc_err,
                "o_minus_c_min": None if oc is None else oc[0],
                "o_minus_c_err_min": None if oc is None else oc[1],
                "o_minus_c_sigma": None if oc is None or oc[1] == 0 else oc[0] / oc[1],
            },
            "sampler": {"acceptance": self.acceptance, **self.extra.get("sampler", {})},
            "meta": {k: v for k, v in self.lc.meta.items() if _jsonable(v)},
        }


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None)) or (
        isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value)
    )


def binned_scatter(time: FloatArray, residuals: FloatArray, minutes: float) -> tuple[float, float]:
    """RMS of residuals binned in ``minutes`` and the white-noise expectation for those bins.

    The expectation is ``sigma_1 / sqrt(n) * sqrt(M / (M - 1))`` with ``sigma_1`` the unbinned
    RMS, ``n`` the mean number of points per bin and ``M`` the number of bins (Winn et al. 2008).
    """
    err = np.ones_like(residuals)
    _, binned, _, counts, _ = bin_arrays(time, residuals, err, minutes)
    full = counts >= max(1, int(0.5 * np.median(counts))) if counts.size else counts.astype(bool)
    m = int(full.sum())
    if m < 2:
        return math.nan, math.nan
    rms_b = float(np.sqrt(np.mean(binned[full] ** 2)))
    sigma1 = float(np.std(residuals))
    n = float(np.mean(counts[full]))
    return rms_b, sigma1 / math.sqrt(n) * math.sqrt(m / (m - 1))


def fit_transit(lc: LightCurve, priors: TransitPriors, options: FitOptions | None = None) -> TransitFit:
    """Fit a transit and the detrending jointly, choose the systematics by BIC, sample the posterior.

    Parameters
    ----------
    lc
        The light curve (relative flux; errors may be zero or NaN to mean unknown).
    priors
        Period, ephemeris and known parameters.
    options
        Detrending candidates, outlier rule and sampler settings.

    Returns
    -------
    TransitFit
        Medians and 68 % intervals (or least-squares values without a sampler), the
        chosen detrending, residual statistics and the O-C.

    Raises
    ------
    TimeseriesError
        With too few points for the model.
    """
    opts = options or FitOptions()
    lc, errors_known = _normalised(lc)
    err = lc.flux_err  # in the units of the normalised flux, as the data residuals

    vectors = detrend_vectors(lc, opts.detrend)
    start = starting_point(lc, priors)
    free = ["tc", "rp_rs", "a_rs", "inc"] + (["u1", "u2"] if priors.fit_ld else [])
    fixed = {k: v for k, v in start.items() if k not in free}
    curve = TransitCurve(lc.time, priors, opts.exptime_s)
    tc_bounds = (float(lc.time.min()), float(lc.time.max()))
    theta = np.array([start[k] for k in free])
    used = np.ones(len(lc), dtype=bool)

    def problem_for(names: tuple[str, ...], mask: NDArray[np.bool_], err_all: FloatArray) -> FitProblem:
        A = design_matrix(vectors, names, len(lc))[mask]
        return FitProblem(
            lc.time[mask],
            lc.flux[mask],
            err_all[mask],
            A,
            _curve_for(mask),
            priors,
            tc_bounds,
            tuple(free),
            fixed,
        )

    curves: dict[bytes, TransitCurve] = {used.tobytes(): curve}

    def _curve_for(mask: NDArray[np.bool_]) -> TransitCurve:
        key = mask.tobytes()
        if key not in curves:
            curves[key] = TransitCurve(lc.time[mask], priors, opts.exptime_s)
        return curves[key]

    base_names = tuple(n for n in ("time",) if n in vectors)
    theta, used = fit_and_clip(problem_for, base_names, used, err, theta, opts.outlier_sigma)
    # BIC needs realistic errors: rescale them so that the baseline fit has reduced chi2 = 1
    err_in = err
    base = problem_for(base_names, used, err)
    base_chi2 = float(np.sum(base.data_residuals(theta) ** 2))
    base_scale = math.sqrt(base_chi2 / max(1, int(used.sum()) - len(free) - 1 - len(base_names)))
    if base_scale > 0 and math.isfinite(base_scale):
        err = err * base_scale

    def trial(names: tuple[str, ...]) -> tuple[float, int]:
        prob = problem_for(names, used, err)
        th = least_squares_fit(prob, theta)
        r = prob.data_residuals(th)
        return float(np.sum(r**2)), len(free) + 1 + len(names)

    n_used = int(used.sum())
    chosen, history = select_vectors(trial, list(vectors), n_used)
    theta, used = fit_and_clip(problem_for, chosen, used, err, theta, opts.outlier_sigma)

    problem = problem_for(chosen, used, err)
    theta = least_squares_fit(problem, theta)
    resid = problem.flux - problem.model(theta)[2]
    dof = max(1, int(used.sum()) - len(free) - 1 - len(chosen))
    chi2_red = float(np.sum((resid / err_in[used]) ** 2) / dof)  # against the input errors
    scale = math.sqrt(chi2_red) if chi2_red > 0 else 1.0
    err = err_in * scale
    problem = problem_for(chosen, used, err)
    theta = least_squares_fit(problem, theta)

    samples: FloatArray | None = None
    acceptance: float | None = None
    sampler_info: dict[str, Any] = {}
    if opts.sampler == "emcee":
        samples, acceptance, sampler_info = _sample(problem, theta, opts)
    params = _estimates(problem, theta, samples)
    best = np.array([params[n].best for n in free])
    transit, coef, total = problem.model(
        best if samples is None else np.array([params[n].median for n in free])
    )
    systematics = total / transit
    residuals = problem.flux - total
    rms = float(np.std(residuals))
    brms, bexp = binned_scatter(problem.time, residuals, opts.bin_minutes)
    pred = priors.predicted_tc(params["tc"].median)
    values = {n: params[n].median if n in params else fixed[n] for n in PARAM_NAMES}
    derived = _derived(values, priors, samples, free)
    fit = TransitFit(
        lc=lc.with_flux(lc.flux, err),
        used=used,
        params=params,
        fixed=fixed,
        detrend_vectors=chosen,
        detrend_coef=coef,
        bic_history=history,
        transit_model=transit,
        systematics=systematics,
        residuals=residuals,
        error_scale=scale,
        chi2_red=chi2_red,
        rms=rms,
        binned_rms=brms,
        binned_expected=bexp,
        bin_minutes=opts.bin_minutes,
        predicted_tc=None if pred is None else pred[0],
        predicted_tc_err=None if pred is None else pred[1],
        samples=samples,
        sample_names=tuple(free),
        acceptance=acceptance,
        outlier_rule=_outlier_rule(opts),
        extra={
            "derived": derived,
            "sampler": sampler_info,
            "errors_known": errors_known,
            "period": priors.period,
            "ecc": priors.ecc,
            "omega": priors.omega,
        },
    )
    log.info(
        "transit fit: Rp/Rs %.4f +- %.4f, tc %.5f +- %.5f, rms %.3f %%, %d/%d points",
        params["rp_rs"].median,
        params["rp_rs"].err,
        params["tc"].median,
        params["tc"].err,
        100 * rms,
        used.sum(),
        used.size,
    )
    return fit


def _normalised(lc: LightCurve) -> tuple[LightCurve, bool]:
    """The finite points in time order, flux and errors normalised to median 1, and whether
    errors were given (without them, the point-to-point scatter stands in until the fit
    rescales it).

    Raises
    ------
    TimeseriesError
        With fewer than 12 usable points.
    """
    lc = lc.sort()
    lc = lc.select(np.isfinite(lc.time) & np.isfinite(lc.flux))
    if len(lc) < 12:
        raise TimeseriesError(f"only {len(lc)} usable points; a transit fit needs at least 12")
    err = lc.flux_err.copy()
    errors_known = bool(np.all(np.isfinite(err)) and np.all(err > 0))
    if not errors_known:
        diffs = np.diff(lc.flux)
        err = np.full(len(lc), robust_std(diffs) / math.sqrt(2.0) or 1e-3)
        log.info("light curve has no usable errors: starting from the point-to-point scatter")
    return lc.with_flux(lc.flux / np.median(lc.flux), err / np.median(lc.flux)), errors_known


def _outlier_rule(opts: FitOptions) -> str:
    return (
        f"|residual| > {opts.outlier_sigma:g} x 1.4826 MAD of the residuals from the best joint fit, "
        f"iterated up to {MAX_CLIP_ROUNDS} times"
    )


def _sample(
    problem: FitProblem, theta: FloatArray, opts: FitOptions
) -> tuple[FloatArray, float, dict[str, Any]]:
    import emcee

    ndim = theta.size
    nwalkers = max(opts.walkers, 2 * ndim + 2)
    rng = np.random.default_rng(opts.seed)
    width = covariance_scale(problem, theta)
    start: list[FloatArray] = []
    while len(start) < nwalkers:
        trial = theta + 0.3 * width * rng.standard_normal(ndim)
        if math.isfinite(problem.log_prior(trial)):
            start.append(trial)
        elif len(start) == 0 and rng.random() < 0.01:
            start.append(theta.copy())
    sampler = emcee.EnsembleSampler(nwalkers, ndim, problem.log_prob_batch, vectorize=True)
    sampler.random_state = np.random.RandomState(opts.seed).get_state()  # reproducible proposals
    sampler.run_mcmc(np.array(start), opts.steps, progress=False)
    burn = opts.steps // 2
    chain = sampler.get_chain(discard=burn, flat=True)
    try:  # tol=0: an estimate even for a short chain (reported, not enforced)
        tau_max = float(np.nanmax(sampler.get_autocorr_time(discard=burn, tol=0)))
    except (emcee.autocorr.AutocorrError, ValueError):  # pragma: no cover
        tau_max = math.nan
    info = {
        "walkers": nwalkers,
        "steps": opts.steps,
        "burn": burn,
        "autocorr_steps": tau_max,
        "chain_over_autocorr": (opts.steps - burn) / tau_max if tau_max > 0 else None,
        "samples": int(chain.shape[0]),
    }
    return np.asarray(chain), float(np.mean(sampler.acceptance_fraction)), info


def _estimates(problem: FitProblem, best: FloatArray, samples: FloatArray | None) -> dict[str, ParamEstimate]:
    out: dict[str, ParamEstimate] = {}
    if samples is None:
        width = covariance_scale(problem, best)
        for name, value, w in zip(problem.free, best, width, strict=True):
            out[name] = ParamEstimate(float(value), float(w), float(w), float(value))
        return out
    lo, med, hi = np.percentile(samples, [15.865, 50.0, 84.135], axis=0)
    for i, name in enumerate(problem.free):
        out[name] = ParamEstimate(float(med[i]), float(med[i] - lo[i]), float(hi[i] - med[i]), float(best[i]))
    return out


def _derived(
    values: dict[str, float], priors: TransitPriors, samples: FloatArray | None, free: Sequence[str]
) -> dict[str, float]:
    rp, a, inc = values["rp_rs"], values["a_rs"], values["inc"]
    b = a * math.cos(math.radians(inc))
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / (a * math.sin(math.radians(inc)))
    t14 = priors.period / math.pi * math.asin(min(arg, 1.0))
    out = {"depth": rp**2, "impact_parameter": b, "duration_days": t14}
    if samples is not None and "rp_rs" in free:
        depth = samples[:, list(free).index("rp_rs")] ** 2
        out["depth_err"] = float(np.std(depth))
    return out
