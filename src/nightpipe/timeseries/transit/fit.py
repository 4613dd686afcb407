"""The fit of :func:`fit_transit`, step by step: normalise the light curve, lay out the parameters
and start; fit the baseline and rescale the errors for the BIC; choose the detrending; clip the
outliers; fit with errors giving a reduced chi-square of 1; sample the posterior; assemble the result.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.detrend import BicStep, design_matrix, detrend_vectors, select_vectors
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit.curve import TransitCurve
from nightpipe.timeseries.transit.likelihood import FitProblem
from nightpipe.timeseries.transit.optimise import (
    MAX_CLIP_ROUNDS,
    fit_and_clip,
    least_squares_fit,
    robust_std,
)
from nightpipe.timeseries.transit.priors import PARAM_NAMES, FitOptions, TransitPriors, starting_point
from nightpipe.timeseries.transit.rednoise import red_noise_beta
from nightpipe.timeseries.transit.result import (
    TransitFit,
    binned_scatter,
    derived_params,
    param_estimates,
)
from nightpipe.timeseries.transit.sampling import sample_posterior

log = logging.getLogger("nightpipe.timeseries.transit")  # the name its log lines have always carried
FloatArray = NDArray[np.float64]


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
    err_in = lc.flux_err  # in the units of the normalised flux, as the data residuals
    build, theta = _layout_and_start(lc, priors, opts)
    theta, used, err = _fit_baseline(build, theta, err_in, opts.outlier_sigma)
    chosen, history = _choose_detrending(build, theta, used, err)
    theta, used = fit_and_clip(build, chosen, used, err, theta, opts.outlier_sigma)  # with the chosen model
    fitted = _fit_with_rescaled_errors(build, chosen, theta, used, err, err_in)
    posterior = _posterior(fitted, opts)
    fit = _assemble(lc, priors, opts, errors_known, (chosen, history), fitted, posterior)
    log.info(
        "transit fit: Rp/Rs %.4f +- %.4f, tc %.5f +- %.5f, rms %.3f %%, %d/%d points",
        fit.params["rp_rs"].median,
        fit.params["rp_rs"].err,
        fit.params["tc"].median,
        fit.params["tc"].err,
        100 * fit.rms,
        fit.used.sum(),
        fit.used.size,
    )
    return fit


class _ProblemBuilder:
    """The light curve, the parameter layout and the detrending candidates of one fit: builds the
    :class:`~nightpipe.timeseries.transit.likelihood.FitProblem` of a choice of vectors on a mask of
    points with given errors (the ``problem_for`` of
    :func:`~nightpipe.timeseries.transit.optimise.fit_and_clip`), with one transit curve per mask,
    computed once."""

    def __init__(
        self,
        lc: LightCurve,
        priors: TransitPriors,
        exptime_s: float | None,
        vectors: dict[str, FloatArray],
        free: tuple[str, ...],
        fixed: dict[str, float],
    ) -> None:
        self.lc = lc
        self.priors = priors
        self.exptime_s = exptime_s
        self.vectors = vectors
        self.free = free
        self.fixed = fixed
        curve = TransitCurve(lc.time, priors, exptime_s)
        self.tc_bounds = (float(lc.time.min()), float(lc.time.max()))
        self._curves: dict[bytes, TransitCurve] = {np.ones(len(lc), dtype=bool).tobytes(): curve}

    def __call__(self, names: tuple[str, ...], mask: NDArray[np.bool_], err_all: FloatArray) -> FitProblem:
        """The problem of the detrending vectors ``names`` on the points of ``mask``, errors ``err_all``."""
        lc = self.lc
        A = design_matrix(self.vectors, names, len(lc))[mask]
        return FitProblem(
            lc.time[mask],
            lc.flux[mask],
            err_all[mask],
            A,
            self._curve_for(mask),
            self.priors,
            self.tc_bounds,
            self.free,
            self.fixed,
        )

    def _curve_for(self, mask: NDArray[np.bool_]) -> TransitCurve:
        key = mask.tobytes()
        if key not in self._curves:
            self._curves[key] = TransitCurve(self.lc.time[mask], self.priors, self.exptime_s)
        return self._curves[key]


@dataclass(frozen=True)
class _Fitted:
    """The final least-squares fit: its problem and parameters, the points kept, the errors made to
    give it a reduced chi-square of 1 and then inflated by the red-noise factor ``beta``, the
    factor and chi-square that gave the first, and ``beta``."""

    problem: FitProblem
    theta: FloatArray
    used: NDArray[np.bool_]
    err: FloatArray
    error_scale: float
    chi2_red: float
    beta: float = 1.0


@dataclass(frozen=True)
class _Posterior:
    """The samples, the mean acceptance and the sampler's report (None, None, {} without a sampler)."""

    samples: FloatArray | None = None
    acceptance: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _layout_and_start(
    lc: LightCurve, priors: TransitPriors, opts: FitOptions
) -> tuple[_ProblemBuilder, FloatArray]:
    """The detrending candidates, the free and fixed parameters, and the free ones' starting values."""
    vectors = detrend_vectors(lc, opts.detrend)
    start = starting_point(lc, priors)
    free = ("tc", "rp_rs", "a_rs", "inc") + (("u1", "u2") if priors.fit_ld else ())
    fixed = {k: v for k, v in start.items() if k not in free}
    build = _ProblemBuilder(lc, priors, opts.exptime_s, vectors, free, fixed)
    return build, np.array([start[k] for k in free])


def _fit_baseline(
    build: _ProblemBuilder, theta: FloatArray, err: FloatArray, sigma: float
) -> tuple[FloatArray, NDArray[np.bool_], FloatArray]:
    """Fit the baseline model (transit + linear time) with outlier rejection, and rescale the errors
    so that it has a reduced chi-square of 1 (the BIC needs realistic errors).

    Returns the parameters, the points kept and the rescaled errors.
    """
    used = np.ones(len(build.lc), dtype=bool)
    base_names = tuple(n for n in ("time",) if n in build.vectors)
    theta, used = fit_and_clip(build, base_names, used, err, theta, sigma)
    base = build(base_names, used, err)
    base_chi2 = float(np.sum(base.data_residuals(theta) ** 2))
    base_scale = math.sqrt(base_chi2 / max(1, int(used.sum()) - len(build.free) - 1 - len(base_names)))
    if base_scale > 0 and math.isfinite(base_scale):
        err = err * base_scale
    return theta, used, err


def _choose_detrending(
    build: _ProblemBuilder, theta: FloatArray, used: NDArray[np.bool_], err: FloatArray
) -> tuple[tuple[str, ...], list[BicStep]]:
    """The detrending vectors chosen by BIC, each candidate set fitted by least squares from ``theta``."""

    def trial(names: tuple[str, ...]) -> tuple[float, int]:
        prob = build(names, used, err)
        th = least_squares_fit(prob, theta)
        r = prob.data_residuals(th)
        return float(np.sum(r**2)), len(build.free) + 1 + len(names)

    n_used = int(used.sum())
    return select_vectors(trial, list(build.vectors), n_used)


def _fit_with_rescaled_errors(
    build: _ProblemBuilder,
    chosen: tuple[str, ...],
    theta: FloatArray,
    used: NDArray[np.bool_],
    err: FloatArray,
    err_in: FloatArray,
) -> _Fitted:
    """Fit the chosen model, rescale the input errors so that it has a reduced chi-square of 1,
    inflate them by the residuals' time-averaging red-noise factor (:func:`red_noise_beta`, at
    least 1) and fit again with them."""
    problem = build(chosen, used, err)
    theta = least_squares_fit(problem, theta)
    resid = problem.flux - problem.model(theta)[2]
    dof = max(1, int(used.sum()) - len(build.free) - 1 - len(chosen))
    chi2_red = float(np.sum((resid / err_in[used]) ** 2) / dof)  # against the input errors
    scale = math.sqrt(chi2_red) if chi2_red > 0 else 1.0
    beta = red_noise_beta(problem.time, resid, _transit_scales_min(build, theta))
    err = err_in * scale * beta
    problem = build(chosen, used, err)
    theta = least_squares_fit(problem, theta)
    return _Fitted(problem, theta, used, err, scale, chi2_red, beta)


def _transit_scales_min(build: _ProblemBuilder, theta: FloatArray) -> tuple[float, ...]:
    """Bin widths (minutes) for the red-noise factor: 10 to 30 minutes, the time scales of a
    transit's ingress and of its mid-time and depth, where correlated noise biases a fit."""
    del build, theta  # the scales are the usual ones of ground-based transit work (Winn et al. 2008)
    return (10.0, 15.0, 20.0, 30.0)


def _posterior(fitted: _Fitted, opts: FitOptions) -> _Posterior:
    """The emcee posterior around the final fit, when the options ask for it."""
    if opts.sampler == "emcee":
        return _Posterior(*sample_posterior(fitted.problem, fitted.theta, opts))
    return _Posterior()


def _assemble(
    lc: LightCurve,
    priors: TransitPriors,
    opts: FitOptions,
    errors_known: bool,
    detrending: tuple[tuple[str, ...], list[BicStep]],
    fitted: _Fitted,
    posterior: _Posterior,
) -> TransitFit:
    """The :class:`~nightpipe.timeseries.transit.result.TransitFit`: estimates, the model at them
    (the medians, or the least-squares values without samples), residual statistics, the predicted
    mid-time and derived values."""
    problem, samples = fitted.problem, posterior.samples
    free, fixed = problem.free, problem.fixed
    params = param_estimates(problem, fitted.theta, samples)
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
    derived = derived_params(values, priors, samples, free)
    chosen, history = detrending
    return TransitFit(
        lc=lc.with_flux(lc.flux, fitted.err),
        used=fitted.used,
        params=params,
        fixed=fixed,
        detrend_vectors=chosen,
        detrend_coef=coef,
        bic_history=history,
        transit_model=transit,
        systematics=systematics,
        residuals=residuals,
        error_scale=fitted.error_scale,
        chi2_red=fitted.chi2_red,
        red_noise_beta=fitted.beta,
        rms=rms,
        binned_rms=brms,
        binned_expected=bexp,
        bin_minutes=opts.bin_minutes,
        predicted_tc=None if pred is None else pred[0],
        predicted_tc_err=None if pred is None else pred[1],
        samples=samples,
        sample_names=free,
        acceptance=posterior.acceptance,
        outlier_rule=_outlier_rule(opts),
        extra={
            "derived": derived,
            "sampler": posterior.info,
            "errors_known": errors_known,
            "period": priors.period,
            "reference": priors.ephemeris(),
            "ecc": priors.ecc,
            "omega": priors.omega,
        },
    )


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
