"""Fitting the ePSF to every source of a frame (PSF photometry).

Every source's flux and position are fitted by Gauss-Newton steps (a 3x3 linear system per star,
in a compiled kernel) on the pixels of a small box; the light of neighbouring sources (within the
box plus the PSF's reach) is subtracted with their current parameters before each step, which
converges to the joint fit of each group of neighbours (block coordinate descent). Errors come
from the inverse normal matrix with the per-pixel variance; ``qfit`` is photutils'
``sum |residual| / flux``.
"""

from __future__ import annotations

import numba
import numpy as np

from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.psf_model import EPSF, PSFResult, _box, _gather, _lookup


def fit_psf(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    epsf: EPSF,
    *,
    variance: np.ndarray | float | None = None,
    fit_half: int = 2,
    max_iters: int = 20,
    fit_positions: bool = True,
    group: bool = True,
    tol: float = 1e-4,
) -> PSFResult:
    """Fit the ePSF to every source of a background-subtracted image.

    Parameters
    ----------
    image
        Background-subtracted image.
    x, y
        Initial centres (0-based pixels).
    epsf
        The PSF model.
    variance
        Per-pixel variance (map or scalar) for weights and errors; None: unweighted fit, errors
        from the residual scatter.
    fit_half
        The fitted box is ``(2 fit_half + 1)^2`` pixels around each source.
    max_iters
        Most Gauss-Newton steps.
    fit_positions
        Fit x and y too (else fluxes only, a linear problem).
    group
        Subtract neighbours' current models before each step (joint fit of close sources).
    tol
        Stop when every position step is below ``tol`` px and every flux step below ``tol`` relative.

    Returns
    -------
    PSFResult

    Examples
    --------
    >>> from nightpipe.photometry.synthetic import make_star_field
    >>> f = make_star_field((300, 300), 40, seed=3, min_separation=30, sky=0.0)
    >>> from nightpipe.photometry.psf_build import build_epsf
    >>> psf = build_epsf(f.data, f.x, f.y, fwhm=3.0)
    >>> res = fit_psf(f.data, f.x + 0.3, f.y - 0.2, psf)
    >>> bool(np.median(np.abs(res.x - f.x)) < 0.05)
    True
    """
    img = np.asarray(image, dtype=float)
    xs = np.array(x, dtype=float)
    ys = np.array(y, dtype=float)
    n = xs.size
    if n == 0:
        empty = np.zeros(0)
        return PSFResult(empty, empty, empty, empty, empty, np.zeros(0, np.uint16), 0)
    fine, scale, fx0, fy0 = epsf.fine
    bx, by = _box(fit_half)
    ix = np.round(xs).astype(int)
    iy = np.round(ys).astype(int)
    data = _gather(img, ix, iy, bx, by)
    if variance is None:
        var = None
    else:
        varr = np.asarray(variance, dtype=float)
        var = np.full(data.shape, float(varr)) if varr.ndim == 0 else _gather(varr, ix, iy, bx, by)
    valid = np.isfinite(data) & (True if var is None else np.isfinite(var) & (var > 0))
    data = np.where(valid, data, 0.0)
    w = valid.astype(float) if var is None else np.where(valid, 1.0 / np.where(valid, var, 1.0), 0.0)
    px = (ix[:, None] + bx[None, :]).astype(float)
    py = (iy[:, None] + by[None, :]).astype(float)
    # neighbours whose light reaches another source's box (CSR lists)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.zeros(0, dtype=np.int64)
    if group and n > 1:
        from scipy.spatial import cKDTree

        reach = epsf.half_size + fit_half * np.sqrt(2) + 1
        found = cKDTree(np.column_stack([xs, ys])).query_pairs(reach, output_type="ndarray")
        if found.size:
            both = np.vstack([found, found[:, ::-1]])
            both = both[np.lexsort((both[:, 1], both[:, 0]))]
            indices = both[:, 1].astype(np.int64)
            indptr[1:] = np.cumsum(np.bincount(both[:, 0], minlength=n))
    flux, x0, y0, flux_err, qfit, iters = _gauss_newton(
        fine,
        float(scale),
        float(fx0),
        float(fy0),
        data,
        w,
        valid,
        px,
        py,
        xs.copy(),
        ys.copy(),
        indptr,
        indices,
        int(max_iters),
        float(tol),
        bool(fit_positions),
        var is not None,
    )
    flags = np.zeros(n, dtype=np.uint16)
    bad = ~np.isfinite(flux) | (flux <= 0) | (np.hypot(x0 - xs, y0 - ys) > max(1.5, fit_half))
    flags[bad] = PixelFlag.FIT_FAILED
    return PSFResult(flux=flux, flux_err=flux_err, x=x0, y=y0, qfit=qfit, flags=flags, iterations=int(iters))


@numba.njit(cache=True)
def _solve3(
    a00: float, a01: float, a02: float, a11: float, a12: float, a22: float, b0: float, b1: float, b2: float
) -> tuple[float, float, float, float, bool]:
    """Solve the symmetric 3x3 system; also return (A^-1)[0, 0]. ``ok`` is False when singular."""
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    det = a00 * c00 + a01 * c01 + a02 * c02
    scale = abs(a00 * a11 * a22) + 1e-300
    if not np.isfinite(det) or abs(det) < 1e-14 * scale:
        return 0.0, 0.0, 0.0, np.nan, False
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    c22 = a00 * a11 - a01 * a01
    x0 = (c00 * b0 + c01 * b1 + c02 * b2) / det
    x1 = (c01 * b0 + c11 * b1 + c12 * b2) / det
    x2 = (c02 * b0 + c12 * b1 + c22 * b2) / det
    return x0, x1, x2, c00 / det, True


@numba.njit(cache=True)
def _gauss_newton(
    fine: np.ndarray,
    scale: float,
    fx0: float,
    fy0: float,
    data: np.ndarray,
    w: np.ndarray,
    valid: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    max_iters: int,
    tol: float,
    fit_positions: bool,
    weighted: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    n, p = data.shape
    flux = np.zeros(n)
    target = np.empty(p)
    # initial fluxes: linear fit at the initial positions, no neighbours
    for s in range(n):
        num = 0.0
        den = 0.0
        for k in range(p):
            e, _a, _b = _lookup(fine, scale, fx0, fy0, px[s, k] - x0[s], py[s, k] - y0[s])
            num += w[s, k] * e * data[s, k]
            den += w[s, k] * e * e
        flux[s] = num / den if den > 0 else 0.0
    active = np.ones(n, dtype=np.bool_)
    it = 0
    for it in range(1, max_iters + 1):  # noqa: B007 - returned after the loop
        changed = False
        for s in range(n):
            if not active[s]:
                # a converged star wakes up when a neighbour still moves
                wake = False
                for q in range(indptr[s], indptr[s + 1]):
                    if active[indices[q]]:
                        wake = True
                        break
                if not wake:
                    continue
            for k in range(p):
                target[k] = data[s, k]
            for q in range(indptr[s], indptr[s + 1]):
                t = indices[q]
                for k in range(p):
                    e, _a, _b = _lookup(fine, scale, fx0, fy0, px[s, k] - x0[t], py[s, k] - y0[t])
                    target[k] -= flux[t] * e
            a00 = a01 = a02 = a11 = a12 = a22 = 0.0
            b0 = b1 = b2 = 0.0
            f = flux[s]
            for k in range(p):
                if not valid[s, k]:
                    continue
                e, gx, gy = _lookup(fine, scale, fx0, fy0, px[s, k] - x0[s], py[s, k] - y0[s])
                r = target[k] - f * e
                wk = w[s, k]
                j1 = -f * gx
                j2 = -f * gy
                a00 += wk * e * e
                b0 += wk * e * r
                if fit_positions:
                    a01 += wk * e * j1
                    a02 += wk * e * j2
                    a11 += wk * j1 * j1
                    a12 += wk * j1 * j2
                    a22 += wk * j2 * j2
                    b1 += wk * j1 * r
                    b2 += wk * j2 * r
            if a00 <= 0:
                active[s] = False
                continue
            if fit_positions:
                st0, st1, st2, _c, ok = _solve3(a00, a01, a02, a11, a12, a22, b0, b1, b2)
                if not ok:
                    active[s] = False
                    continue
                sx = min(max(st1, -0.5), 0.5)
                sy = min(max(st2, -0.5), 0.5)
                flux[s] = f + st0
                x0[s] += sx
                y0[s] += sy
                done = abs(sx) < tol and abs(sy) < tol and abs(st0) <= tol * max(abs(flux[s]), 1e-12)
            else:
                st = b0 / a00
                flux[s] = f + st
                done = abs(st) <= tol * max(abs(flux[s]), 1e-12)
            active[s] = not done
            if not done:
                changed = True
        if not changed:
            break
    # errors and fit quality
    flux_err = np.zeros(n)
    qfit = np.zeros(n)
    for s in range(n):
        for k in range(p):
            target[k] = data[s, k]
        for q in range(indptr[s], indptr[s + 1]):
            t = indices[q]
            for k in range(p):
                e, _a, _b = _lookup(fine, scale, fx0, fy0, px[s, k] - x0[t], py[s, k] - y0[t])
                target[k] -= flux[t] * e
        f = flux[s]
        a00 = a01 = a02 = a11 = a12 = a22 = 0.0
        rss = 0.0
        absres = 0.0
        nvalid = 0
        for k in range(p):
            if not valid[s, k]:
                continue
            e, gx, gy = _lookup(fine, scale, fx0, fy0, px[s, k] - x0[s], py[s, k] - y0[s])
            r = target[k] - f * e
            wk = w[s, k]
            j1 = -f * gx
            j2 = -f * gy
            a00 += wk * e * e
            a01 += wk * e * j1
            a02 += wk * e * j2
            a11 += wk * j1 * j1
            a12 += wk * j1 * j2
            a22 += wk * j2 * j2
            rss += r * r
            absres += abs(r)
            nvalid += 1
        if fit_positions:
            _s0, _s1, _s2, cov, _ok = _solve3(a00, a01, a02, a11, a12, a22, 0.0, 0.0, 0.0)
            npar = 3
        else:
            cov = 1.0 / a00 if a00 > 0 else np.nan
            npar = 1
        if not weighted:
            cov *= rss / max(nvalid - npar, 1)
        flux_err[s] = np.sqrt(cov) if cov >= 0 else np.nan
        qfit[s] = absres / f if f != 0 else np.nan
    return flux, x0, y0, flux_err, qfit, it
