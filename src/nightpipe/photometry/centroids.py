"""Positions and flags of detected sources: Gaussian-windowed centroids (SExtractor's
XWIN/YWIN) iterated from the peak pixel, and each source's peak value and pixel flags."""

from __future__ import annotations

import numba
import numpy as np

from nightpipe.photometry.segments import _clean_value


def windowed_centroids(
    image: np.ndarray, x0: np.ndarray, y0: np.ndarray, sigma: float, iters: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor XWIN/YWIN) iterated from ``(x0, y0)``.

    Parameters
    ----------
    image
        Background-subtracted image.
    x0, y0
        Starting positions (pixels, 0-based).
    sigma
        Standard deviation of the Gaussian window, pixels (about FWHM / 2.355).
    iters
        Iterations.

    Returns
    -------
    x, y : ndarray
    """
    zero = np.zeros((1, 1), dtype=np.float32)
    bkg = np.broadcast_to(zero, image.shape)
    return _centroids(
        image, bkg, np.zeros((0, 0), np.uint16), 0, np.asarray(x0), np.asarray(y0), sigma, iters
    )


@numba.njit(cache=True)
def _centroids(
    data: np.ndarray,
    bkg: np.ndarray,
    mask: np.ndarray,
    bad_bits: int,
    x0: np.ndarray,
    y0: np.ndarray,
    sigma: float,
    iters: int,
) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = data.shape
    n = x0.size
    xs = x0.astype(np.float64).copy()
    ys = y0.astype(np.float64).copy()
    r = int(np.ceil(4 * sigma)) + 1
    inv = 1.0 / (2 * sigma * sigma)
    for k in range(n):
        x = xs[k]
        y = ys[k]
        for _ in range(iters):
            ix = round(x)
            iy = round(y)
            sw = 0.0
            sx = 0.0
            sy = 0.0
            for yy in range(max(iy - r, 0), min(iy + r + 1, ny)):
                dy = yy - y
                for xx in range(max(ix - r, 0), min(ix + r + 1, nx)):
                    dx = xx - x
                    d2 = dx * dx + dy * dy
                    if d2 > 16 * sigma * sigma:
                        continue
                    w = np.exp(-d2 * inv) * _clean_value(data, bkg, mask, bad_bits, yy, xx)
                    sw += w
                    sx += w * dx
                    sy += w * dy
            if sw <= 0:
                break
            # factor 2: the windowed centroid converges to the true centre for a Gaussian source
            stepx = 2.0 * sx / sw
            stepy = 2.0 * sy / sw
            if abs(stepx) > r or abs(stepy) > r:
                break
            x += stepx
            y += stepy
            if stepx * stepx + stepy * stepy < 1e-8:
                break
        if abs(x - x0[k]) <= 3 * sigma + 1 and abs(y - y0[k]) <= 3 * sigma + 1:
            xs[k] = x
            ys[k] = y
    return xs, ys


@numba.njit(cache=True)
def _peak_and_flags(
    raw: np.ndarray,
    bkg: np.ndarray,
    mask: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radius: float,
    saturation: float,
    bad_bits: int,
) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = raw.shape
    n = x.size
    peak = np.zeros(n, dtype=np.float32)
    flags = np.zeros(n, dtype=np.uint16)
    r = int(np.ceil(radius))
    for k in range(n):
        ix = round(x[k])
        iy = round(y[k])
        best = -np.inf
        f = 0
        for yy in range(max(iy - r, 0), min(iy + r + 1, ny)):
            for xx in range(max(ix - r, 0), min(ix + r + 1, nx)):
                if (xx - x[k]) ** 2 + (yy - y[k]) ** 2 > radius * radius:
                    continue
                v = _clean_value(raw, bkg, mask, 230, yy, xx)  # 230: HOT|DEAD|BAD_COLUMN|LOW_FLAT|NO_DATA
                if abs(xx - ix) <= 1 and abs(yy - iy) <= 1 and v > best:
                    best = v
                if mask.shape[0] > 0:
                    f |= mask[yy, xx] & bad_bits
                if raw[yy, xx] >= saturation:
                    f |= 1
        peak[k] = best if best > -np.inf else np.nan
        flags[k] = f
    return peak, flags
