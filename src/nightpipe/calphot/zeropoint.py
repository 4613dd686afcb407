"""Robust zero points: catalogue minus instrumental magnitudes, with outlier rejection.

The model is ``m_cat - m_inst = ZP (+ c * colour)``. Points are weighted by their combined
errors plus an extra scatter term solved so that the reduced chi-square is one (real
fields always scatter more than the formal errors), and clipped iteratively at
``sigma`` from the fit, in units of each point's own error (with the extra scatter),
scaled up by the robust (MAD) spread of those normalised residuals when it exceeds one.
The zero point's error is the standard error of the weighted fit with that extra
scatter included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.stats import mad_std

from nightpipe.errors import PhotometryError


@dataclass(frozen=True)
class ZeroPointFit:
    """A fitted zero point (and optional colour term) with its diagnostics."""

    zero_point: float
    zero_point_err: float
    colour_term: float | None
    colour_term_err: float | None
    extra_scatter: float
    rms: float
    n_used: int
    n_rejected: int
    used: np.ndarray  # boolean, per input point
    residuals: np.ndarray  # data - model, per input point (NaN where unusable)


def instrumental_mag(
    flux: np.ndarray, flux_err: np.ndarray, exptime: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``-2.5 log10(flux / exptime)`` and its error; non-positive fluxes give NaN."""
    flux = np.asarray(flux, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(flux / exptime), np.nan)
        err = np.where(flux > 0, 2.5 / np.log(10) * np.asarray(flux_err, float) / flux, np.nan)
    return mag, err


def _extra_scatter(resid: np.ndarray, var: np.ndarray) -> float:
    """The s >= 0 with sum(resid^2 / (var + s^2)) = n - 1 (bisection); 0 when already consistent."""
    n = resid.size
    if n < 3 or np.sum(resid**2 / var) <= n - 1:
        return 0.0
    lo, hi = 0.0, float(np.max(np.abs(resid))) + 1e-6
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.sum(resid**2 / (var + mid**2)) > n - 1:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _weighted_fit(y: np.ndarray, var: np.ndarray, colour: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of y = a (+ b colour); returns parameters and their covariance."""
    design = np.ones((y.size, 1)) if colour is None else np.column_stack([np.ones(y.size), colour])
    w = 1.0 / var
    normal = design.T @ (design * w[:, None])
    cov = np.linalg.inv(normal)
    params = cov @ (design.T @ (w * y))
    return params, cov


def fit_zero_point(
    inst_mag: np.ndarray,
    inst_err: np.ndarray,
    cat_mag: np.ndarray,
    cat_err: np.ndarray,
    colour: np.ndarray | None = None,
    *,
    fit_colour: bool = False,
    sigma: float = 3.0,
    max_iters: int = 10,
    min_points: int = 3,
) -> ZeroPointFit:
    """Fit the zero point of one frame.

    Raises
    ------
    PhotometryError
        When fewer than ``min_points`` usable stars remain.

    Examples
    --------
    >>> import numpy as np
    >>> inst = np.array([-10.0, -9.0, -8.0, -7.0, -6.0])
    >>> fit = fit_zero_point(inst, np.full(5, 0.01), inst + 25.0, np.full(5, 0.01))
    >>> round(fit.zero_point, 6)
    25.0
    """
    inst_mag, cat_mag = np.asarray(inst_mag, float), np.asarray(cat_mag, float)
    y = cat_mag - inst_mag
    var = np.asarray(inst_err, float) ** 2 + np.asarray(cat_err, float) ** 2
    var = np.where(np.isfinite(var) & (var > 0), var, 1e-4)
    c = np.asarray(colour, float) if (fit_colour and colour is not None) else None
    usable = np.isfinite(y) & (np.isfinite(c) if c is not None else True)
    used = usable.copy()
    extra = 0.0
    for _ in range(max_iters):
        if used.sum() < min_points:
            raise PhotometryError(
                f"only {int(used.sum())} usable reference stars for a zero point (need {min_points})",
                hint="check the WCS and the catalogue's magnitude range, or widen the match radius",
            )
        params, cov = _weighted_fit(y[used], var[used], None if c is None else c[used])
        model_all = params[0] if c is None else params[0] + params[1] * np.nan_to_num(c)
        resid = y - model_all
        extra = _extra_scatter(resid[used], var[used])
        params, cov = _weighted_fit(y[used], var[used] + extra**2, None if c is None else c[used])
        model_all = params[0] if c is None else params[0] + params[1] * np.nan_to_num(c)
        resid = y - model_all
        z = resid / np.sqrt(var + extra**2)
        spread = max(float(mad_std(z[used])), 1.0)
        new_used = usable & (np.abs(z) <= sigma * spread)
        if np.array_equal(new_used, used):
            break
        used = new_used
    residuals = np.where(usable, resid, np.nan)
    rms = float(np.sqrt(np.mean(resid[used] ** 2)))
    return ZeroPointFit(
        zero_point=float(params[0]),
        zero_point_err=float(np.sqrt(cov[0, 0])),
        colour_term=float(params[1]) if c is not None else None,
        colour_term_err=float(np.sqrt(cov[1, 1])) if c is not None else None,
        extra_scatter=float(extra),
        rms=rms,
        n_used=int(used.sum()),
        n_rejected=int(usable.sum() - used.sum()),
        used=used,
        residuals=residuals,
    )
