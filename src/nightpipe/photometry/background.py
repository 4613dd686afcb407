"""Sky background: a global sigma-clipped level and a 2-D mesh (SExtractor-style) map with its RMS.

The 2-D background is estimated on a grid of ``box x box`` meshes: in each mesh the valid
pixels are sigma-clipped around their median and the sky is the SExtractor mode estimate
``2.5 median - 1.5 mean`` (the median when the distribution is too skewed). The mesh grid is
median-filtered over ``filter_size x filter_size`` meshes and interpolated to every pixel by
separable cubic convolution (Catmull-Rom), which passes through the mesh values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np
from scipy.ndimage import median_filter

from nightpipe.errors import PhotometryError
from nightpipe.photometry.clipped_stats import (
    HIST_HALF_WIDTH,
    NBINS,
    _clipped_stats,
    _hist_clipped_stats,
)

log = logging.getLogger(__name__)

CLIP_SIGMA = 3.0
CLIP_ITERS = 5


@dataclass(frozen=True)
class Background:
    """A background estimate of one frame.

    Attributes
    ----------
    level
        Per-pixel sky level (same shape as the frame), float32.
    rms
        Per-pixel sky noise (standard deviation), float32.
    global_level, global_rms
        The frame's median sky and noise (medians of the mesh values).
    """

    level: np.ndarray
    rms: np.ndarray
    global_level: float
    global_rms: float


@numba.njit(parallel=True, cache=True, nogil=True)
def _mesh_stats(
    data: np.ndarray, mask: np.ndarray, box: int, sigma: float, iters: int, min_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clipped sky (SExtractor mode) and RMS of every mesh; NaN where too few valid pixels.

    ``mask`` is the frame's flag plane (non-zero: ignored), or a 0x0 array for none. Like
    SExtractor, each mesh costs three passes: mean and std, a rough 2-sigma clip, then a fine
    histogram (``NBINS`` bins over centre +- 6 sigma) on which the iterated clipping, the
    median and the mean are computed.
    """
    use_mask = mask.shape[0] > 0
    ny, nx = data.shape
    my = (ny + box - 1) // box
    mx = (nx + box - 1) // box
    sky = np.full((my, mx), np.nan, dtype=np.float64)
    rms = np.full((my, mx), np.nan, dtype=np.float64)
    for k in numba.prange(my * mx):
        j = k // mx
        i = k % mx
        y0 = j * box
        x0 = i * box
        y1 = min(y0 + box, ny)
        x1 = min(x0 + box, nx)
        n = 0
        s1 = 0.0
        s2 = 0.0
        ref = np.nan
        for y in range(y0, y1):
            for x in range(x0, x1):
                v = data[y, x]
                if np.isfinite(v) and not (use_mask and mask[y, x] != 0):
                    if n == 0:
                        ref = v
                    d = v - ref
                    n += 1
                    s1 += d
                    s2 += d * d
        if n < min_fraction * (y1 - y0) * (x1 - x0) or n < 10:
            continue
        mean = ref + s1 / n
        std = np.sqrt(max(s2 / n - (s1 / n) ** 2, 0.0))
        # rough clip at 2 sigma around the mean: removes the stars before the histogram
        lo = mean - 2.0 * std
        hi = mean + 2.0 * std
        m = 0
        s1 = 0.0
        s2 = 0.0
        for y in range(y0, y1):
            for x in range(x0, x1):
                v = data[y, x]
                if lo <= v <= hi and not (use_mask and mask[y, x] != 0):
                    d = v - mean
                    m += 1
                    s1 += d
                    s2 += d * d
        if m >= 3:
            centre = mean + s1 / m
            std2 = np.sqrt(max(s2 / m - (s1 / m) ** 2, 0.0))
        else:
            centre = mean
            std2 = std
        if std2 <= 0:
            sky[j, i] = centre
            rms[j, i] = 0.0
            continue
        hlo = centre - HIST_HALF_WIDTH * std2
        width = 2 * HIST_HALF_WIDTH * std2 / NBINS
        hist = np.zeros(NBINS, dtype=np.float64)
        for y in range(y0, y1):
            for x in range(x0, x1):
                v = data[y, x]
                if np.isfinite(v) and not (use_mask and mask[y, x] != 0):
                    b = int(np.floor((v - hlo) / width))
                    if 0 <= b < NBINS:
                        hist[b] += 1.0
        med, cmean, cstd = _hist_clipped_stats(hist, hlo, width, sigma, iters)
        if not np.isfinite(med):
            continue
        if cstd > 0 and abs(cmean - med) / cstd < 0.3:
            sky[j, i] = 2.5 * med - 1.5 * cmean
        else:
            sky[j, i] = med
        rms[j, i] = cstd
    return sky, rms


def _fill_missing(grid: np.ndarray) -> np.ndarray:
    """Replace NaN meshes by the mean of their valid neighbours, growing until none is left."""
    out = grid.copy()
    if np.all(np.isnan(out)):
        return out
    while np.isnan(out).any():
        padded = np.pad(out, 1, constant_values=np.nan)
        stack = np.stack(
            [padded[dy : dy + out.shape[0], dx : dx + out.shape[1]] for dy in range(3) for dx in range(3)]
        )
        valid = np.isfinite(stack)
        counts = valid.sum(axis=0)
        sums = np.where(valid, stack, 0.0).sum(axis=0)
        fill = np.isnan(out) & (counts > 0)
        out[fill] = sums[fill] / counts[fill]
    return out


def _cubic_weights(n_pixels: int, box: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic-convolution (Catmull-Rom) interpolation from mesh centres to pixels.

    Returns, per pixel, the index of the first of four meshes and their four weights;
    indices are clamped at the edges (constant extrapolation beyond the outer mesh centres).
    """
    n_mesh = (n_pixels + box - 1) // box
    starts = np.arange(n_mesh) * box
    ends = np.minimum(starts + box, n_pixels)
    centres = (starts + ends - 1) / 2.0
    pix = np.clip(np.arange(n_pixels, dtype=np.float64), centres[0], centres[-1])
    # position in mesh units (meshes are uniform except possibly the last one)
    idx = np.clip(np.searchsorted(centres, pix, side="right") - 1, 0, max(n_mesh - 2, 0))
    if n_mesh == 1:
        return np.zeros(n_pixels, dtype=np.int64), np.tile([0.0, 1.0, 0.0, 0.0], (n_pixels, 1))
    t = (pix - centres[idx]) / (centres[idx + 1] - centres[idx])
    t2 = t * t
    t3 = t2 * t
    w = np.stack(
        [
            -0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2,
        ],
        axis=1,
    )
    return (idx - 1).astype(np.int64), w


@numba.njit(parallel=True, cache=True, nogil=True)
def _interpolate_maps(
    sky: np.ndarray,
    rms: np.ndarray,
    iy: np.ndarray,
    wy: np.ndarray,
    ix: np.ndarray,
    wx: np.ndarray,
    floor: float,
) -> tuple[np.ndarray, np.ndarray]:
    my, mx = sky.shape
    ny = iy.size
    nx = ix.size
    level = np.empty((ny, nx), dtype=np.float32)
    noise = np.empty((ny, nx), dtype=np.float32)
    for y in numba.prange(ny):
        rowsky = np.zeros(mx)
        rowrms = np.zeros(mx)
        for k in range(4):
            j = min(max(iy[y] + k, 0), my - 1)
            w = wy[y, k]
            for i in range(mx):
                rowsky[i] += w * sky[j, i]
                rowrms[i] += w * rms[j, i]
        for x in range(nx):
            a = 0.0
            b = 0.0
            for k in range(4):
                i = min(max(ix[x] + k, 0), mx - 1)
                a += wx[x, k] * rowsky[i]
                b += wx[x, k] * rowrms[i]
            level[y, x] = a
            noise[y, x] = max(b, floor)
    return level, noise


def _bad_pixels(data: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    bad = ~np.isfinite(data)
    if mask is not None:
        if mask.shape != data.shape:
            raise PhotometryError(f"mask shape {mask.shape} differs from the data shape {data.shape}")
        bad |= mask.astype(bool)
    return bad


def global_background(
    data: np.ndarray, mask: np.ndarray | None = None, *, sigma: float = CLIP_SIGMA, iters: int = CLIP_ITERS
) -> tuple[float, float]:
    """Sigma-clipped sky level (median) and noise (standard deviation) of a whole frame.

    Parameters
    ----------
    data
        The 2-D image.
    mask
        Pixels to ignore (non-zero: ignored), same shape as ``data``.
    sigma, iters
        Clipping limit in standard deviations around the median, and iterations.

    Returns
    -------
    level, rms : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> level, rms = global_background(rng.normal(100.0, 5.0, (200, 200)))
    >>> round(level), round(rms)
    (100, 5)
    """
    bad = _bad_pixels(data, mask)
    values = np.asarray(data, dtype=np.float64)[~bad]
    if values.size < 10:
        raise PhotometryError("too few valid pixels to estimate the background", hint="check the mask")
    step = max(1, values.size // 1_000_000)
    med, _mean, std, _n = _clipped_stats(values[::step], float(sigma), int(iters))
    return float(med), float(std)


def mesh_background(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    box: int = 64,
    filter_size: int = 3,
    sigma: float = CLIP_SIGMA,
    iters: int = CLIP_ITERS,
) -> Background:
    """2-D background and RMS maps from sigma-clipped meshes, median-filtered and spline-interpolated.

    Parameters
    ----------
    data
        The 2-D image.
    mask
        Pixels to ignore (non-zero), e.g. the MASK plane of a calibrated frame.
    box
        Mesh size in pixels (``settings.photometry.background_box``).
    filter_size
        Median filter over the mesh grid, in meshes (``settings.photometry.background_filter``).
    sigma, iters
        Clipping of each mesh.

    Returns
    -------
    Background

    Raises
    ------
    PhotometryError
        When the frame has no valid pixels or is not 2-D.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> yy, xx = np.mgrid[:256, :256]
    >>> image = 100.0 + 0.1 * xx + rng.normal(0.0, 2.0, (256, 256))
    >>> bkg = mesh_background(image, box=32)
    >>> bool(abs(bkg.level[128, 200] - 120.0) < 1.0)
    True
    """
    if data.ndim != 2:
        raise PhotometryError(f"expected a 2-D image, got shape {data.shape}")
    if mask is None:
        flagplane = np.zeros((0, 0), dtype=np.uint16)
    elif mask.shape != data.shape:
        raise PhotometryError(f"mask shape {mask.shape} differs from the data shape {data.shape}")
    else:
        flagplane = np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == bool else np.asarray(mask)
    box = int(max(4, min(box, max(data.shape))))
    sky, rms = _mesh_stats(np.asarray(data, dtype=np.float32), flagplane, box, float(sigma), int(iters), 0.5)
    if np.all(np.isnan(sky)):
        raise PhotometryError(
            "no mesh has enough valid pixels for a background", hint="check the mask and the data for NaNs"
        )
    sky = _fill_missing(sky)
    rms = _fill_missing(rms)
    if filter_size > 1:
        sky = median_filter(sky, size=filter_size, mode="nearest")
        rms = median_filter(rms, size=filter_size, mode="nearest")
    iy, wy = _cubic_weights(data.shape[0], box)
    ix, wx = _cubic_weights(data.shape[1], box)
    floor = float(np.min(rms[rms > 0])) if np.any(rms > 0) else 1e-12
    level, noise = _interpolate_maps(sky, rms, iy, wy, ix, wx, floor)
    return Background(
        level=np.ascontiguousarray(level, dtype=np.float32),
        rms=np.ascontiguousarray(noise, dtype=np.float32),
        global_level=float(np.median(sky)),
        global_rms=float(np.median(rms)),
    )
