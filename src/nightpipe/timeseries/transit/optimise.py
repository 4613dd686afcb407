"""Least squares: a grid of starting mid-times, the fit from the better start, widths from the
Jacobian, and the iterated rejection of outliers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from nightpipe.timeseries.transit.likelihood import FitProblem, solve_systematics
from nightpipe.timeseries.transit.priors import PARAM_NAMES

FloatArray = NDArray[np.float64]
#: Builds the problem of a set of detrending vectors on a mask of points with given errors.
ProblemFor = Callable[[tuple[str, ...], NDArray[np.bool_], FloatArray], FitProblem]

MAX_CLIP_ROUNDS = 5


def robust_std(values: FloatArray) -> float:
    """1.4826 x the median absolute deviation (the standard deviation of Gaussian values)."""
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def _grid_start(problem: FitProblem, theta0: FloatArray) -> FloatArray:
    """The best of a grid of mid-times (every ~3 min over the span), radius ratios and (when it
    is free) a/Rs, i.e. durations.

    Least squares from one guess can settle in a wrong mid-time; the grid, evaluated in one
    vectorised call, gives a start in the right basin.
    """
    t_lo, t_hi = problem.tc_bounds
    step = max(2e-3, (t_hi - t_lo) / 400.0)
    tcs = np.arange(t_lo + step / 2, t_hi, step)
    i_tc, i_rp = problem.free.index("tc"), problem.free.index("rp_rs")
    rps = np.array([0.6, 1.0, 1.4]) * theta0[i_rp]
    # with a/Rs free, also durations from 0.6 to 1.6 x the start's (a/Rs from 1.6 to 0.6 x)
    ars = theta0[problem.free.index("a_rs")] * np.array([0.6, 1.0, 1.6]) if "a_rs" in problem.free else None
    shapes = np.array([(r, a) for r in rps for a in (ars if ars is not None else [math.nan])])
    thetas = np.repeat(theta0[None, :], tcs.size * len(shapes), axis=0)
    thetas[:, i_tc] = np.repeat(tcs, len(shapes))
    thetas[:, i_rp] = np.tile(shapes[:, 0], tcs.size)
    if ars is not None:
        thetas[:, problem.free.index("a_rs")] = np.tile(shapes[:, 1], tcs.size)
    logp = problem.log_prob_batch(thetas)
    if not np.any(np.isfinite(logp)):
        return theta0
    return np.asarray(thetas[int(np.argmax(logp))], dtype=np.float64)


def least_squares_fit(problem: FitProblem, theta0: FloatArray, *, grid: bool = True) -> FloatArray:
    """Least-squares fit from ``theta0`` and (with ``grid``) from the best grid point; the better wins."""
    scale = np.array(
        [{"tc": 1e-3, "rp_rs": 1e-2, "a_rs": 0.5, "inc": 0.5}.get(n, 0.05) for n in problem.free]
    )
    starts = [theta0] + ([_grid_start(problem, theta0)] if grid else [])
    best: FloatArray | None = None
    best_cost = math.inf
    for start in starts:
        if not math.isfinite(problem.log_prior(start)):
            continue
        result = least_squares(problem.residuals, start, x_scale=scale, method="trf", max_nfev=2000)
        if result.cost < best_cost:
            best, best_cost = np.asarray(result.x, dtype=np.float64), float(result.cost)
    return theta0 if best is None else best


def jacobian_widths(problem: FitProblem, theta: FloatArray) -> FloatArray:
    """The 1-sigma widths of the least-squares fit at ``theta``, ``sqrt(diag((J^T J)^-1))``,
    uncapped: what a fit without a sampler reports (a parameter the data leave free gets a large
    width, or ``inf`` when the Jacobian is singular, not a made-up one)."""
    res = least_squares(problem.residuals, theta, max_nfev=1)
    J = np.asarray(res.jac)
    try:
        sig = np.sqrt(np.clip(np.diag(np.linalg.pinv(J.T @ J)), 0, None))
    except np.linalg.LinAlgError:
        sig = np.full(theta.size, np.inf)
    return np.where(np.isfinite(sig) & (sig > 0), sig, np.inf)


def covariance_scale(problem: FitProblem, theta: FloatArray) -> FloatArray:
    """Widths to scatter the walkers' start by: :func:`jacobian_widths` kept between a floor and
    10 x the floor (a start in the basin of ``theta``; not an error to report)."""
    sig = jacobian_widths(problem, theta)
    floor = np.array(
        [{"tc": 2e-4, "rp_rs": 2e-3, "a_rs": 0.05, "inc": 0.1}.get(n, 0.02) for n in problem.free]
    )
    return np.where(np.isfinite(sig) & (sig > 0), np.minimum(sig, 10 * floor), floor)


def fit_and_clip(
    problem_for: ProblemFor,
    names: tuple[str, ...],
    used: NDArray[np.bool_],
    err: FloatArray,
    theta: FloatArray,
    sigma: float,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Fit, reject outliers from all points (so a rejected point can come back), repeat."""
    used = used.copy()
    for _ in range(MAX_CLIP_ROUNDS):
        prob = problem_for(names, used, err)
        theta = least_squares_fit(prob, theta)
        full = problem_for(names, np.ones_like(used), err)
        transit = full.curve(*_ordered(prob.full(theta)))
        coef, _ = solve_systematics(transit[used], full.flux[used], 1.0 / full.err[used], full.A[used])
        resid = full.flux - transit * (full.A @ coef)
        limit = sigma * robust_std(resid[used])
        new = np.abs(resid) <= limit
        if np.array_equal(new, used):
            break
        used = new
    return theta, used


def _ordered(values: dict[str, float]) -> list[float]:
    return [values[k] for k in PARAM_NAMES]
