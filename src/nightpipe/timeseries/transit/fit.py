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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.detrend import design_matrix, detrend_vectors, select_vectors
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
        samples, acceptance, sampler_info = sample_posterior(problem, theta, opts)
    params = param_estimates(problem, theta, samples)
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
