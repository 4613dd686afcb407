"""The likelihood of one fit: the systematics solved linearly for each transit shape, the hard
limits and Gaussian terms of the priors, the residuals for least squares and the vectorised log
posterior for emcee (:class:`FitProblem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nightpipe.timeseries.transit.curve import TransitCurve
from nightpipe.timeseries.transit.priors import PARAM_NAMES, TransitPriors

FloatArray = NDArray[np.float64]

N_PRIOR_TERMS = 4


def solve_systematics(
    transit: FloatArray, flux: FloatArray, weight: FloatArray, A: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Weighted linear least squares of ``flux ~ transit * (A c)``; returns ``(c, model)``.

    ``weight`` is ``1/err``. Solved through the normal equations (A has a few columns).
    ``transit`` may be 2-D (one row per parameter set): then ``c`` and the model are too.
    """
    X = A * transit[..., :, None]
    Xw = X * weight[:, None]
    yw = flux * weight
    XtX = np.swapaxes(Xw, -1, -2) @ Xw
    Xty = np.swapaxes(Xw, -1, -2) @ yw
    try:
        coef = np.linalg.solve(XtX, Xty[..., None])[..., 0]
    except np.linalg.LinAlgError:  # degenerate vectors (a constant column, say): the least-norm answer
        coef = (np.linalg.pinv(XtX) @ Xty[..., None])[..., 0]
    model = (X @ coef[..., None])[..., 0]
    return np.asarray(coef, dtype=np.float64), np.asarray(model, dtype=np.float64)


@dataclass
class FitProblem:
    """The data and the parameter layout of one fit."""

    time: FloatArray
    flux: FloatArray
    err: FloatArray
    A: FloatArray
    curve: TransitCurve
    priors: TransitPriors
    tc_bounds: tuple[float, float]
    free: tuple[str, ...]
    fixed: dict[str, float]

    def full(self, theta: ArrayLike) -> dict[str, float]:
        values = dict(self.fixed)
        values.update(zip(self.free, (float(v) for v in np.ravel(theta)), strict=True))
        return values

    def transit(self, theta: ArrayLike) -> FloatArray:
        v = self.full(theta)
        return self.curve(v["tc"], v["rp_rs"], v["a_rs"], v["inc"], v["u1"], v["u2"])

    def model(self, theta: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
        transit = self.transit(theta)
        coef, total = solve_systematics(transit, self.flux, 1.0 / self.err, self.A)
        return transit, coef, total

    def in_bounds(self, v: dict[str, float]) -> bool:
        """The hard limits of the priors (physical region, observed span)."""
        if not (self.tc_bounds[0] < v["tc"] < self.tc_bounds[1]):
            return False
        if not (0.0 < v["rp_rs"] < 0.5) or not (1.0 < v["a_rs"] < 200.0) or not (0.0 < v["inc"] <= 90.0):
            return False
        if v["a_rs"] * math.cos(math.radians(v["inc"])) > 1.0 + v["rp_rs"]:
            return False
        u1, u2 = v["u1"], v["u2"]
        return bool(u1 > 0 and u1 + u2 < 1 and u1 + 2 * u2 > 0)

    def prior_residuals(self, v: dict[str, float]) -> FloatArray:
        """The Gaussian prior terms ``(value - mean) / width`` (zero where there is no prior)."""
        pri = self.priors
        out = np.zeros(N_PRIOR_TERMS)
        if pri.a_rs is not None:
            out[0] = (v["a_rs"] - pri.a_rs) / (pri.a_rs_err or 0.05 * pri.a_rs)
        if pri.inc is not None:
            out[1] = (v["inc"] - pri.inc) / (pri.inc_err or 1.0)
        if pri.u is not None and pri.u_err is not None:
            out[2] = (v["u1"] - pri.u[0]) / pri.u_err
            out[3] = (v["u2"] - pri.u[1]) / pri.u_err
        return out

    def log_prior(self, theta: ArrayLike) -> float:
        v = self.full(theta)
        if not self.in_bounds(v):
            return -math.inf
        return float(-0.5 * np.sum(self.prior_residuals(v) ** 2))

    def data_residuals(self, theta: ArrayLike) -> FloatArray:
        """Normalised residuals of the data alone."""
        _, _, total = self.model(theta)
        return np.asarray((self.flux - total) / self.err, dtype=np.float64)

    def residuals(self, theta: ArrayLike) -> FloatArray:
        """Normalised residuals and the Gaussian prior terms (for least squares).

        Outside the hard limits every term is multiplied by 1e3 so that the optimizer turns back.
        """
        v = self.full(theta)
        r = np.concatenate([self.data_residuals(theta), self.prior_residuals(v)])
        return r if self.in_bounds(v) else r * 1e3 + 1e3

    def log_prior_batch(self, v: dict[str, FloatArray]) -> FloatArray:
        """:meth:`log_prior` for arrays of parameter values (same limits and Gaussian terms)."""
        lo, hi = self.tc_bounds
        tc, rp, a, inc, u1, u2 = (v[name] for name in PARAM_NAMES)
        ok = (lo < tc) & (tc < hi) & (rp > 0) & (rp < 0.5) & (a > 1) & (a < 200) & (inc > 0) & (inc <= 90)
        ok &= a * np.cos(np.radians(inc)) <= 1.0 + rp
        ok &= (u1 > 0) & (u1 + u2 < 1) & (u1 + 2 * u2 > 0)
        pri = self.priors
        lp = np.zeros(tc.size)
        if pri.a_rs is not None:
            lp -= 0.5 * ((a - pri.a_rs) / (pri.a_rs_err or 0.05 * pri.a_rs)) ** 2
        if pri.inc is not None:
            lp -= 0.5 * ((inc - pri.inc) / (pri.inc_err or 1.0)) ** 2
        if pri.u is not None and pri.u_err is not None:
            lp -= 0.5 * (((u1 - pri.u[0]) / pri.u_err) ** 2 + ((u2 - pri.u[1]) / pri.u_err) ** 2)
        return np.where(ok, lp, -np.inf)

    def log_prob_batch(self, thetas: FloatArray) -> FloatArray:
        """Log posterior of many parameter sets at once (emcee's vectorised call)."""
        thetas = np.atleast_2d(thetas)
        out = np.full(thetas.shape[0], -np.inf)
        allc = {name: np.full(thetas.shape[0], value) for name, value in self.fixed.items()}
        allc.update({name: thetas[:, j] for j, name in enumerate(self.free)})
        priors = self.log_prior_batch(allc)
        ok = np.flatnonzero(np.isfinite(priors))
        if ok.size == 0:
            return out
        cols = {name: values[ok] for name, values in allc.items()}
        transits = self.curve.batch(*(cols[name] for name in PARAM_NAMES))
        _, total = solve_systematics(transits, self.flux, 1.0 / self.err, self.A)
        chi2 = np.sum(((self.flux - total) / self.err) ** 2, axis=1)
        out[ok] = priors[ok] - 0.5 * chi2
        return out
