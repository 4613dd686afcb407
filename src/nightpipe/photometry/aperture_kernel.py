"""The compiled kernels of aperture photometry: the exact area of a pixel inside a circle
(:func:`circle_rect_overlap`), the sigma-clipped annulus sky (:func:`_clipped_sky`) and the pass
over every source's pixels that sums all its apertures at once (:func:`_photometry_kernel`).
:func:`nightpipe.photometry.aperture.aperture_photometry` checks the inputs and drives them.
"""

from __future__ import annotations

import numba
import numpy as np

from nightpipe.photometry.clipped_stats import _mean_std, _median_inplace


@numba.njit(cache=True, inline="always")
def _g(x: float, h: float, r: float) -> float:
    # indefinite integral of (sqrt(r^2 - x^2) - h) dx
    s = x / r
    s = min(1.0, max(-1.0, s))
    return 0.5 * (np.sqrt(max(0.0, 1.0 - s * s)) * x * r + r * r * np.arcsin(s) - 2.0 * h * x)


@numba.njit(cache=True, inline="always")
def _area_above(x0: float, x1: float, h: float, r: float) -> float:
    # area of the circle (centre 0, radius r) inside x0 < x < x1, y > h >= 0
    if h >= r:
        return 0.0
    s = np.sqrt(r * r - h * h)
    a = max(-s, min(s, x0))
    b = max(-s, min(s, x1))
    return _g(b, h, r) - _g(a, h, r)


@numba.njit(cache=True)
def circle_rect_overlap(x0: float, x1: float, y0: float, y1: float, r: float) -> float:
    """Exact area of the circle of radius ``r`` at the origin inside the box ``[x0,x1] x [y0,y1]``."""
    if y0 >= 0.0:
        return _area_above(x0, x1, y0, r) - _area_above(x0, x1, y1, r)
    if y1 <= 0.0:
        return _area_above(x0, x1, -y1, r) - _area_above(x0, x1, -y0, r)
    return (_area_above(x0, x1, 0.0, r) - _area_above(x0, x1, -y0, r)) + (
        _area_above(x0, x1, 0.0, r) - _area_above(x0, x1, y1, r)
    )


@numba.njit(cache=True)
def _clipped_sky(
    vals: np.ndarray, n: int, sigma: float, iters: int, statistic: int
) -> tuple[float, float, int]:
    """Astropy-style sigma clipping (median centre, std scale) of vals[:n], in place; (sky, std, n)."""
    if n == 0:
        return np.nan, np.nan, 0
    m = n
    for _ in range(iters):
        med = _median_inplace(vals, m)
        mean, std = _mean_std(vals, m)
        lo = med - sigma * std
        hi = med + sigma * std
        k = 0
        for i in range(m):
            v = vals[i]
            if lo <= v <= hi:
                vals[k] = v
                k += 1
        if k == m:
            break
        m = k
        if m == 0:
            return np.nan, np.nan, 0
    med = _median_inplace(vals, m)
    mean, std = _mean_std(vals, m)
    if statistic == 0:
        return med, std, m
    if statistic == 1:
        return 3.0 * med - 2.0 * mean, std, m
    return mean, std, m


@numba.njit(parallel=True, cache=True, nogil=True)
def _photometry_kernel(
    data: np.ndarray,
    mask: np.ndarray,
    var: np.ndarray,
    bkgmap: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radii: np.ndarray,
    r_in: float,
    r_out: float,
    statistic: int,
    sigma: float,
    iters: int,
    saturation: float,
    flag_bits: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ny, nx = data.shape
    n = x.size
    kr = radii.size
    rmax = radii.max()
    use_annulus = r_out > r_in and r_out > 0
    use_mask = mask.shape[0] > 0
    use_var = var.shape[0] > 0
    use_map = bkgmap.shape[0] > 0
    rbox = max(rmax, r_out if use_annulus else 0.0)
    nbuf = int((2 * np.ceil(rbox) + 3) ** 2)
    sums = np.zeros((n, kr))
    vsum = np.zeros((n, kr))
    area = np.zeros((n, kr))
    mapsum = np.zeros((n, kr))
    sky = np.full(n, np.nan)
    skystd = np.full(n, np.nan)
    skyn = np.zeros(n, dtype=np.int64)
    flags = np.zeros(n, dtype=np.int64)
    for s in numba.prange(n):
        xc = x[s]
        yc = y[s]
        f = 0
        # --- apertures
        xa = max(int(np.floor(xc - rmax - 0.5)), 0)
        xb = min(int(np.ceil(xc + rmax + 0.5)), nx - 1)
        ya = max(int(np.floor(yc - rmax - 0.5)), 0)
        yb = min(int(np.ceil(yc + rmax + 0.5)), ny - 1)
        if xc - rmax < -0.5 or yc - rmax < -0.5 or xc + rmax > nx - 0.5 or yc + rmax > ny - 0.5:
            f |= 256  # EDGE: the largest aperture leaves the frame
        for yy in range(ya, yb + 1):
            dy0 = yy - 0.5 - yc
            dy1 = yy + 0.5 - yc
            dymin = min(abs(dy0), abs(dy1)) if dy0 * dy1 > 0 else 0.0
            dymax = max(abs(dy0), abs(dy1))
            for xx in range(xa, xb + 1):
                dx0 = xx - 0.5 - xc
                dx1 = xx + 0.5 - xc
                dxmin = min(abs(dx0), abs(dx1)) if dx0 * dx1 > 0 else 0.0
                dxmax = max(abs(dx0), abs(dx1))
                dmin2 = dxmin * dxmin + dymin * dymin
                if dmin2 >= rmax * rmax:
                    continue
                dmax2 = dxmax * dxmax + dymax * dymax
                v = data[yy, xx]
                bad = not np.isfinite(v)
                if use_mask:
                    mbits = mask[yy, xx]
                    f |= mbits & flag_bits
                    if mbits & 64:
                        bad = True
                if v >= saturation:
                    f |= 1
                if bad:
                    f |= 64
                    continue
                pv = var[yy, xx] if use_var else 0.0
                bv = bkgmap[yy, xx] if use_map else 0.0
                for k in range(kr):
                    r = radii[k]
                    if dmin2 >= r * r:
                        continue
                    w = 1.0 if dmax2 <= r * r else circle_rect_overlap(dx0, dx1, dy0, dy1, r)
                    sums[s, k] += w * v
                    vsum[s, k] += w * w * pv
                    area[s, k] += w
                    mapsum[s, k] += w * bv
        flags[s] = f
        # --- annulus
        if use_annulus:
            buf = np.empty(nbuf)
            m = 0
            xa = max(int(np.ceil(xc - r_out)), 0)
            xb = min(int(np.floor(xc + r_out)), nx - 1)
            ya = max(int(np.ceil(yc - r_out)), 0)
            yb = min(int(np.floor(yc + r_out)), ny - 1)
            for yy in range(ya, yb + 1):
                for xx in range(xa, xb + 1):
                    d2 = (xx - xc) ** 2 + (yy - yc) ** 2
                    if d2 < r_in * r_in or d2 > r_out * r_out:
                        continue
                    v = data[yy, xx]
                    if not np.isfinite(v):
                        continue
                    if use_mask and mask[yy, xx] != 0:
                        continue
                    buf[m] = v
                    m += 1
            sk, sd, kept = _clipped_sky(buf, m, sigma, iters, statistic)
            sky[s] = sk
            skystd[s] = sd
            skyn[s] = kept
    return sums, vsum, area, mapsum, sky, skystd, np.stack((skyn, flags))
