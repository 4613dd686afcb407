"""Source shapes: FWHM, ellipticity and position angle per source, and the frame's seeing.

Shapes come from adaptive Gaussian-weighted second moments: the moments ``M`` of the
source times a circular Gaussian window of variance ``w^2`` are, for a Gaussian source of
covariance ``C``, ``M = (C^-1 + I/w^2)^-1``; so ``C = (M^-1 - I/w^2)^-1`` exactly, and the window
is matched to the source (``w^2 = sqrt(det C)``) in a few iterations; the pixel's own
variance (1/12 px^2) is removed. This is exact for Gaussian stars; on Moffat stars the
moments overestimate the FWHM (by about 15 % for beta = 3) because of the wings, so the
frame's seeing is measured by fitting a Moffat profile to the stacked bright stars
(:mod:`nightpipe.photometry.profiles`) and the per-source values are rescaled to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from nightpipe.errors import PhotometryError

log = logging.getLogger(__name__)

SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Shapes:
    """Per-source shape (arrays of length N); NaN where the moments failed."""

    fwhm: np.ndarray
    """Geometric-mean FWHM ``2.355 sqrt(a b)``, pixels."""
    ellipticity: np.ndarray
    """``1 - b/a``."""
    theta: np.ndarray
    """Position angle of the major axis, degrees counter-clockwise from +x, in (-90, 90]."""
    a: np.ndarray
    b: np.ndarray
    """Standard deviations along the major and minor axes, pixels."""


@numba.njit(parallel=True, cache=True, nogil=True)
def _adaptive_moments(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, w0: float, iters: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ny, nx = image.shape
    n = x.size
    cxx = np.full(n, np.nan)
    cyy = np.full(n, np.nan)
    cxy = np.full(n, np.nan)
    for s in numba.prange(n):
        w2 = w0 * w0
        xc = x[s]
        yc = y[s]
        ok = False
        for _ in range(iters):
            r = int(np.ceil(4.0 * np.sqrt(w2))) + 1
            ix = round(xc)
            iy = round(yc)
            s0 = 0.0
            sxx = 0.0
            syy = 0.0
            sxy = 0.0
            for yy in range(max(iy - r, 0), min(iy + r + 1, ny)):
                dy = yy - yc
                for xx in range(max(ix - r, 0), min(ix + r + 1, nx)):
                    dx = xx - xc
                    d2 = dx * dx + dy * dy
                    if d2 > 16.0 * w2:
                        continue
                    v = image[yy, xx]
                    if not np.isfinite(v):
                        continue
                    wv = np.exp(-0.5 * d2 / w2) * v
                    s0 += wv
                    sxx += wv * dx * dx
                    syy += wv * dy * dy
                    sxy += wv * dx * dy
            if s0 <= 0:
                ok = False
                break
            mxx = sxx / s0
            myy = syy / s0
            mxy = sxy / s0
            det = mxx * myy - mxy * mxy
            if det <= 0:
                ok = False
                break
            # inverse of M minus the window's inverse
            ixx = myy / det - 1.0 / w2
            iyy = mxx / det - 1.0 / w2
            ixy = -mxy / det
            idet = ixx * iyy - ixy * ixy
            if ixx <= 0 or iyy <= 0 or idet <= 0:
                ok = False
                break
            # minus the pixel's own variance (1/12 px^2): pixel values are integrals over pixels
            c_xx = iyy / idet - 1.0 / 12.0
            c_yy = ixx / idet - 1.0 / 12.0
            c_xy = -ixy / idet
            if c_xx <= 0 or c_yy <= 0:
                ok = False
                break
            new_w2 = np.sqrt(c_xx * c_yy - c_xy * c_xy)
            ok = True
            cxx[s] = c_xx
            cyy[s] = c_yy
            cxy[s] = c_xy
            if abs(new_w2 - w2) < 1e-4 * w2:
                break
            w2 = min(max(new_w2, 0.05), 400.0)
        if not ok:
            cxx[s] = np.nan
            cyy[s] = np.nan
            cxy[s] = np.nan
    return cxx, cyy, cxy


def measure_shapes(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, *, fwhm_guess: float = 3.0, iters: int = 20
) -> Shapes:
    """FWHM, ellipticity and position angle of sources on a background-subtracted image.

    Parameters
    ----------
    image
        Background-subtracted image.
    x, y
        Source centres (0-based pixels).
    fwhm_guess
        Starting window FWHM, pixels.
    iters
        Most window-matching iterations.

    Returns
    -------
    Shapes

    Examples
    --------
    >>> yy, xx = np.mgrid[:41, :41]
    >>> star = np.exp(-((xx - 20.0) ** 2 + (yy - 20.0) ** 2) / (2 * 2.0**2))
    >>> shp = measure_shapes(star, np.array([20.0]), np.array([20.0]))
    >>> round(float(shp.fwhm[0]), 2)
    4.66
    """
    if image.ndim != 2:
        raise PhotometryError(f"expected a 2-D image, got shape {image.shape}")
    xs = np.ascontiguousarray(x, dtype=np.float64)
    ys = np.ascontiguousarray(y, dtype=np.float64)
    cxx, cyy, cxy = _adaptive_moments(
        np.asarray(image, dtype=np.float32), xs, ys, float(fwhm_guess) / SIGMA_TO_FWHM, int(iters)
    )
    half_tr = 0.5 * (cxx + cyy)
    diff = np.sqrt((0.5 * (cxx - cyy)) ** 2 + cxy**2)
    with np.errstate(invalid="ignore"):
        a = np.sqrt(half_tr + diff)
        b = np.sqrt(np.maximum(half_tr - diff, 0.0))
        theta = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy))
        fwhm = SIGMA_TO_FWHM * np.sqrt(a * b)
        ell = 1.0 - b / a
    return Shapes(fwhm=fwhm, ellipticity=ell, theta=theta, a=a, b=b)


def frame_fwhm(
    fwhm: np.ndarray,
    *,
    ellipticity: np.ndarray | None = None,
    flags: np.ndarray | None = None,
    snr: np.ndarray | None = None,
    min_snr: float = 20.0,
    max_ellipticity: float = 0.5,
) -> tuple[float, float, int]:
    """Robust seeing of a frame: sigma-clipped median FWHM of clean, round, well-exposed sources.

    Parameters
    ----------
    fwhm
        Per-source FWHM.
    ellipticity, flags, snr
        Optional filters: sources more elongated than ``max_ellipticity``, with any flag set,
        or with signal-to-noise below ``min_snr`` are ignored (when enough remain).
    min_snr, max_ellipticity
        The limits.

    Returns
    -------
    fwhm, scatter, n : float, float, int
        Median FWHM, its robust standard deviation (MAD x 1.4826) among the stars used, and
        how many were used. NaN and 0 when no source qualifies.

    Examples
    --------
    >>> frame_fwhm(np.array([3.0, 3.1, 2.9, 3.0, 9.0]))[0]
    3.0
    """
    good = np.isfinite(fwhm) & (fwhm > 0.5)
    for extra in (
        None if flags is None else flags == 0,
        None if ellipticity is None else ellipticity < max_ellipticity,
        None if snr is None else snr >= min_snr,
    ):
        if extra is not None and np.count_nonzero(good & extra) >= 3:
            good &= extra
    values = fwhm[good]
    if values.size == 0:
        return float("nan"), float("nan"), 0
    for _ in range(5):
        med = np.median(values)
        mad = 1.4826 * np.median(np.abs(values - med))
        keep = np.abs(values - med) <= 3 * max(mad, 1e-3 * med)
        if keep.all() or keep.sum() < 3:
            break
        values = values[keep]
    med = float(np.median(values))
    return med, float(1.4826 * np.median(np.abs(values - med))), int(values.size)
