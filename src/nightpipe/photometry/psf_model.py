"""The ePSF model: the :class:`EPSF` grid and the compiled lookups that evaluate and render it.

The ePSF follows photutils' ``ImagePSF`` convention: the value at offset ``(dx, dy)`` of a
unit-flux star is the bicubic spline of the grid at ``(origin + oversampling * d)``. For speed the
spline is tabulated once on a grid :data:`FINE` times finer and read with bilinear lookups
(:func:`_lookup`), which the fit (:mod:`nightpipe.photometry.psf_fit`) and the build
(:mod:`nightpipe.photometry.psf_build`) share, with the pixel-box helpers :func:`_box` and
:func:`_gather` and the :class:`PSFResult` of a fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np
from scipy.interpolate import RectBivariateSpline


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
