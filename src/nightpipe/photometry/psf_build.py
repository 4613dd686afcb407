"""Building the empirical PSF (ePSF) from the frame's clean stars.

Stamps of bright, isolated, unflagged stars (background-subtracted, normalised to unit flux) are
stacked on a grid oversampled ``oversampling`` times, each pixel value landing in the cell of its
offset from the star's centre; each cell is a 3-sigma clipped mean. The centres are refined by
fitting the new ePSF (:func:`nightpipe.photometry.psf_fit.fit_psf`) and the stack is rebuilt
(``iters`` times), with the light of the neighbouring sources modelled and taken out.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import PixelFlag
from nightpipe.photometry.psf_fit import fit_psf
from nightpipe.photometry.psf_model import EPSF, _box, _gather, _render


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
        vals, weight, dx, dy, inside = _normalised_stamps(vals, dx, dy, inside, h)
        grid = _stacked_grid(epsf, vals, weight, dx, dy, inside, h, os_)
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


def _normalised_stamps(
    vals: np.ndarray, dx: np.ndarray, dy: np.ndarray, inside: np.ndarray, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stamps minus their local sky, normalised to unit flux, with their weights (flux squared);
    stamps without positive flux are dropped (with their offsets and masks)."""
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
    return vals, weight, dx, dy, inside


def _stacked_grid(
    epsf: EPSF | None,
    vals: np.ndarray,
    weight: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    inside: np.ndarray,
    h: int,
    os_: int,
) -> np.ndarray:
    """The oversampled grid of this pass, normalised to unit flux: the stamps stacked into cells on
    the first pass, the current model plus the stacked residuals on later ones."""
    n_grid = 2 * h * os_ + 1
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
    return grid


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
