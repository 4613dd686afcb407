"""Empirical PSF (ePSF) photometry: build the PSF from the frame's clean stars, fit every source.

Building: stamps of bright, isolated, unflagged stars (background-subtracted, normalised to
unit flux) are stacked on a grid oversampled ``oversampling`` times, each pixel value landing
in the cell of its offset from the star's centre; each cell is a 3-sigma clipped mean. The
centres are refined by fitting the new ePSF and the stack is rebuilt (``iters`` times).
The ePSF follows photutils' ``ImagePSF`` convention: the value at offset ``(dx, dy)`` of a
unit-flux star is the bicubic spline of the grid at ``(origin + oversampling * d)``, so the
same array can be handed to ``photutils.psf.ImagePSF`` (as the benchmark does).

Fitting: every source's flux and position are fitted by batched Gauss-Newton steps (a 3x3
linear system per star, all stars at once in numpy) on the pixels of a small box; the light
of neighbouring sources (within the box plus the PSF's reach) is subtracted with their
current parameters before each step, which converges to the joint fit of each group of
neighbours (block coordinate descent). Errors come from the inverse normal matrix with the
per-pixel variance; ``qfit`` is photutils' ``sum |residual| / flux``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from scipy.interpolate import RectBivariateSpline
from scipy.ndimage import gaussian_filter

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import PixelFlag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EPSF:
    """An empirical PSF sampled on an oversampled grid (photutils ``ImagePSF`` convention)."""

    data: np.ndarray
    """Oversampled grid; sums to ``oversampling**2`` (unit flux)."""
    oversampling: int
    n_stars: int

    @property
    def origin(self) -> tuple[float, float]:
        """Grid coordinates (x, y) of the star's centre."""
        ny, nx = self.data.shape
        return (nx - 1) / 2.0, (ny - 1) / 2.0

    @property
    def half_size(self) -> float:
        """Reach of the model from its centre, image pixels."""
        return (min(self.data.shape) - 1) / 2.0 / self.oversampling

    @cached_property
    def spline(self) -> RectBivariateSpline:
        """Bicubic spline of the grid (x, y order, as photutils' ``ImagePSF``)."""
        ny, nx = self.data.shape
        return RectBivariateSpline(np.arange(nx), np.arange(ny), self.data.T, kx=3, ky=3, s=0)

    def interpolator(self) -> RectBivariateSpline:
        """Bicubic spline of the grid (x, y order, as photutils)."""
        return self.spline

    @cached_property
    def fine(self) -> tuple[np.ndarray, float, float, float]:
        """The spline tabulated on a grid FINE times finer, for fast bilinear lookups."""
        return _fine_grid(self)

    def evaluate(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Model of a unit-flux star at pixel offsets ``(dx, dy)`` from its centre (0 outside)."""
        fine, scale, fx0, fy0 = self.fine
        ddx = np.asarray(dx, dtype=float)
        ddy = np.asarray(dy, dtype=float)
        return _lookup_many(fine, scale, fx0, fy0, ddx.ravel(), ddy.ravel()).reshape(ddx.shape)


@dataclass(frozen=True)
class PSFResult:
    """PSF photometry of N sources."""

    flux: np.ndarray
    flux_err: np.ndarray
    x: np.ndarray
    y: np.ndarray
    qfit: np.ndarray
    flags: np.ndarray
    """FIT_FAILED where the fit did not give a positive, nearby solution."""
    iterations: int


def _box(half: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    return xx.ravel(), yy.ravel()


def _gather(image: np.ndarray, ix: np.ndarray, iy: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Pixel values (N, P) of boxes at integer centres; NaN outside the frame."""
    ny, nx = image.shape
    px = ix[:, None] + bx[None, :]
    py = iy[:, None] + by[None, :]
    inside = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    out = np.full(px.shape, np.nan)
    out[inside] = image[py[inside], px[inside]]
    return out


def build_epsf(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    fwhm: float,
    oversampling: int = 2,
    half_size: int | None = None,
    iters: int = 3,
    others: tuple[np.ndarray, np.ndarray] | None = None,
) -> EPSF:
    """Build an ePSF from stars of a background-subtracted image.

    Parameters
    ----------
    image
        Background-subtracted image.
    x, y
        Centres of clean, isolated, unsaturated stars (at least 3).
    fwhm
        The frame's FWHM, pixels (sets the stamp size).
    oversampling
        Grid cells per pixel.
    half_size
        Stamp half-size in pixels (default ``ceil(5 x FWHM)``, at least 5): light beyond it is
        not in the model, so PSF fluxes miss it (0.1 % for a Moffat beta = 3).
    iters
        Refinements: refit the centres with the current ePSF, then add the stacked residuals.
    others
        Positions ``(x, y)`` of all the frame's sources: stamp pixels within 2.5 FWHM of another
        source are left out of the stack (their light would widen the wings).

    Returns
    -------
    EPSF

    Raises
    ------
    PhotometryError
        With fewer than 3 usable stars.

    Examples
    --------
    >>> from nightpipe.photometry.synthetic import make_star_field
    >>> f = make_star_field((300, 300), 40, seed=3, min_separation=30, sky=0.0)
    >>> psf = build_epsf(f.data, f.x, f.y, fwhm=3.0)
    >>> round(float(psf.data.sum()) / psf.oversampling**2, 3)
    1.0
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.size < 3:
        raise PhotometryError(f"only {xs.size} stars to build the PSF from (need 3)")
    h = int(half_size if half_size is not None else max(5, int(np.ceil(5 * fwhm))))
    os_ = int(oversampling)
    n_grid = 2 * h * os_ + 1
    bx, by = _box(h + 1)
    epsf: EPSF | None = None
    neighbours: np.ndarray | None = None
    own_flux = np.zeros(xs.size)
    for it in range(iters + 1):
        ix = np.round(xs).astype(int)
        iy = np.round(ys).astype(int)
        dx = ix[:, None] + bx[None, :] - xs[:, None]
        dy = iy[:, None] + by[None, :] - ys[:, None]
        if neighbours is None or epsf is None:
            vals = _gather(image, ix, iy, bx, by)
        else:
            # every source's model is subtracted, then each stamp's own star is added back
            vals = _gather(image - neighbours, ix, iy, bx, by)
            vals += own_flux[:, None] * epsf.evaluate(dx.ravel(), dy.ravel()).reshape(dx.shape)
        inside = (np.abs(dx) <= h) & (np.abs(dy) <= h)
        if others is not None and neighbours is None:
            inside &= ~_near_others(
                xs, ys, ix[:, None] + bx[None, :], iy[:, None] + by[None, :], others, 2.5 * fwhm
            )
        # local sky of each stamp: median of its outer ring (the 2-D background leaves offsets)
        r2 = dx * dx + dy * dy
        ring = inside & (r2 >= (h - 3) ** 2) & (r2 <= h * h) & np.isfinite(vals)
        local = np.array([np.median(v[m]) if m.sum() >= 10 else 0.0 for v, m in zip(vals, ring, strict=True)])
        vals = vals - local[:, None]
        norm = np.nansum(np.where(inside & (r2 <= h * h), vals, 0.0), axis=1)
        good = (norm > 0) & np.isfinite(norm)
        weight = np.repeat(norm[good] ** 2, vals.shape[1]).reshape(-1, vals.shape[1])
        vals = vals[good] / norm[good, None]
        dx, dy, inside = dx[good], dy[good], inside[good]
        if vals.shape[0] < 3:
            raise PhotometryError("fewer than 3 stars with positive flux to build the PSF from")
        cx = np.round(dx * os_).astype(int) + h * os_
        cy = np.round(dy * os_).astype(int) + h * os_
        use = inside & np.isfinite(vals) & (cx >= 0) & (cx < n_grid) & (cy >= 0) & (cy < n_grid)
        cell = (cy * n_grid + cx)[use]
        if epsf is None:
            grid = _clipped_cell_means(cell, vals[use], n_grid * n_grid, weight[use]).reshape(n_grid, n_grid)
            grid = _fill_empty(grid)
        else:
            # later passes stack the residuals from the current model, evaluated at the exact
            # offsets: the rounding of offsets to grid cells then no longer blurs the PSF
            resid = vals[use] - epsf.evaluate(dx[use], dy[use])
            corr = _clipped_cell_means(cell, resid, n_grid * n_grid, weight[use]).reshape(n_grid, n_grid)
            grid = epsf.data + np.where(np.isfinite(corr), corr, 0.0)
        grid = np.maximum(grid, 0.0)
        grid *= os_ * os_ / grid.sum()
        epsf = EPSF(data=grid, oversampling=os_, n_stars=int(vals.shape[0]))
        if it < iters:
            fit = fit_psf(image, xs, ys, epsf, fit_half=max(2, int(np.ceil(fwhm))), max_iters=10, group=False)
            ok = (fit.flags & PixelFlag.FIT_FAILED) == 0
            moved = np.hypot(fit.x - xs, fit.y - ys) < 1.0
            xs = np.where(ok & moved, fit.x, xs)
            ys = np.where(ok & moved, fit.y, ys)
            if others is not None and len(others[0]) > 0:
                neighbours, own_flux = _model_of_all(image, others, xs, ys, epsf, fwhm)
    assert epsf is not None
    return epsf


def _model_of_all(
    image: np.ndarray,
    others: tuple[np.ndarray, np.ndarray],
    xs: np.ndarray,
    ys: np.ndarray,
    epsf: EPSF,
    fwhm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the sources whose light reaches a stack stamp and render them; also the stack stars' fluxes."""
    from scipy.spatial import cKDTree

    ox = np.asarray(others[0], dtype=float)
    oy = np.asarray(others[1], dtype=float)
    reach = 2.0 * np.sqrt(2.0) * epsf.half_size + 2.0
    dist_to_stack, _ = cKDTree(np.column_stack([xs, ys])).query(np.column_stack([ox, oy]))
    near = dist_to_stack <= reach
    ox, oy = ox[near], oy[near]
    fit = fit_psf(image, ox, oy, epsf, fit_half=max(2, int(np.ceil(fwhm))), max_iters=10)
    flux = np.where((fit.flags == 0) & np.isfinite(fit.flux), fit.flux, 0.0)
    fine, scale, fx0, fy0 = epsf.fine
    model = _render(image.shape, fit.x, fit.y, flux, fine, scale, fx0, fy0, int(np.ceil(epsf.half_size)))
    dist, idx = cKDTree(np.column_stack([ox, oy])).query(np.column_stack([xs, ys]))
    own = np.where(dist < 1.0, flux[idx], 0.0)
    # the stack stars' own models were rendered at the fitted positions: use those positions' fluxes
    return model, own


@numba.njit(cache=True)
def _render(
    shape: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    fine: np.ndarray,
    scale: float,
    fx0: float,
    fy0: float,
    half: int,
) -> np.ndarray:
    ny, nx = shape
    out = np.zeros((ny, nx))
    for s in range(x.size):
        if flux[s] == 0:
            continue
        ix = round(x[s])
        iy = round(y[s])
        for yy in range(max(iy - half, 0), min(iy + half + 1, ny)):
            for xx in range(max(ix - half, 0), min(ix + half + 1, nx)):
                e, _a, _b = _lookup(fine, scale, fx0, fy0, xx - x[s], yy - y[s])
                out[yy, xx] += flux[s] * e
    return out


def _near_others(
    xs: np.ndarray,
    ys: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    others: tuple[np.ndarray, np.ndarray],
    radius: float,
) -> np.ndarray:
    """(N, P) True where a stamp pixel lies within ``radius`` of a source other than the stamp's star."""
    from scipy.spatial import cKDTree

    ox = np.asarray(others[0], dtype=float)
    oy = np.asarray(others[1], dtype=float)
    near = np.zeros(px.shape, bool)
    if ox.size == 0:
        return near
    tree = cKDTree(np.column_stack([ox, oy]))
    reach = np.hypot(px - xs[:, None], py - ys[:, None]).max() + radius
    for k in range(xs.size):
        idx = tree.query_ball_point([xs[k], ys[k]], reach)
        for j in idx:
            if abs(ox[j] - xs[k]) < 0.5 and abs(oy[j] - ys[k]) < 0.5:
                continue  # the star itself
            near[k] |= (px[k] - ox[j]) ** 2 + (py[k] - oy[j]) ** 2 < radius * radius
    return near


def _clipped_cell_means(
    cell: np.ndarray, v: np.ndarray, n: int, weight: np.ndarray, sigma: float = 3.0
) -> np.ndarray:
    """Weighted, sigma-clipped mean of the samples ``v`` in each of ``n`` cells (NaN when empty)."""
    keep = np.ones(v.size, bool)
    mean = np.full(n, np.nan)
    for _ in range(3):
        cnt = np.bincount(cell[keep], minlength=n)
        sw = np.bincount(cell[keep], weights=weight[keep], minlength=n)
        s1 = np.bincount(cell[keep], weights=weight[keep] * v[keep], minlength=n)
        s2 = np.bincount(cell[keep], weights=weight[keep] * v[keep] ** 2, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / sw
            std = np.sqrt(np.maximum(s2 / sw - mean**2, 0.0))
        dev = np.abs(v - mean[cell])
        new_keep = ~(dev > sigma * std[cell]) | (cnt[cell] < 4)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return mean


def _fill_empty(grid: np.ndarray) -> np.ndarray:
    empty = ~np.isfinite(grid)
    if not empty.any():
        return grid
    filled = np.where(empty, 0.0, grid)
    weight = gaussian_filter((~empty).astype(float), 1.0, mode="constant")
    smooth = gaussian_filter(filled, 1.0, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(empty, smooth / weight, grid)
    return np.where(np.isfinite(out), out, 0.0)


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


FINE = 8  # fine-grid cells per ePSF grid cell


def _fine_grid(epsf: EPSF) -> tuple[np.ndarray, float, float, float]:
    """The ePSF spline tabulated FINE times finer (bilinear lookups then match the spline to ~1e-4)."""
    ny, nx = epsf.data.shape
    spline = epsf.interpolator()
    gx = np.arange((nx - 1) * FINE + 1) / FINE
    gy = np.arange((ny - 1) * FINE + 1) / FINE
    fine = np.asarray(spline(gx, gy, grid=True)).T  # (y, x)
    ox, oy = epsf.origin
    scale = epsf.oversampling * FINE  # fine cells per image pixel
    return np.ascontiguousarray(fine), float(scale), ox * FINE, oy * FINE


@numba.njit(cache=True, inline="always")
def _lookup(
    fine: np.ndarray, scale: float, fx0: float, fy0: float, dx: float, dy: float
) -> tuple[float, float, float]:
    """Value and derivatives (per image pixel) of the tabulated PSF at offset (dx, dy)."""
    ny, nx = fine.shape
    u = fx0 + scale * dx
    v = fy0 + scale * dy
    if u < 1 or v < 1 or u > nx - 2 or v > ny - 2:
        return 0.0, 0.0, 0.0
    i = int(u)
    j = int(v)
    tu = u - i
    tv = v - j
    f00 = fine[j, i]
    f10 = fine[j, i + 1]
    f01 = fine[j + 1, i]
    f11 = fine[j + 1, i + 1]
    val = (1 - tv) * ((1 - tu) * f00 + tu * f10) + tv * ((1 - tu) * f01 + tu * f11)
    gu = (1 - tv) * (f10 - f00) + tv * (f11 - f01)
    gv = (1 - tu) * (f01 - f00) + tu * (f11 - f10)
    return val, gu * scale, gv * scale


@numba.njit(cache=True)
def _lookup_many(
    fine: np.ndarray, scale: float, fx0: float, fy0: float, dx: np.ndarray, dy: np.ndarray
) -> np.ndarray:
    out = np.empty(dx.size)
    for k in range(dx.size):
        out[k] = _lookup(fine, scale, fx0, fy0, dx[k], dy[k])[0]
    return out


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
