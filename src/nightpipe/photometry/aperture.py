"""Multi-aperture photometry: exact circular apertures, annulus sky, CCD-equation errors, flags.

All K radii of a source are measured in one pass over the pixels of its largest aperture;
pixel weights are the exact area of the pixel inside the circle (as photutils' ``exact``
method). The local sky per pixel comes from an annulus, using the pixels whose centres
fall in it (as photutils' ``ApertureStats``), sigma-clipped (3 sigma around the median, at
most 5 iterations, as astropy's ``SigmaClip`` defaults) and summarised by the median, the
mode ``3 median - 2 mean`` or the mean; or from a given background map.

Flux errors follow the CCD equation. Without an uncertainty map, the variance of a flux
``F`` (ADU) over ``A`` pixels is ``(F g + A (S g + D + R^2)) / g^2 + A^2 sigma_S^2`` with gain
``g`` (e-/ADU), sky ``S`` (ADU/px), dark ``D`` (e-/px), read noise ``R`` (e-) and the error of
the sky estimate ``sigma_S`` (ADU/px). With an uncertainty map (a calibrated frame's UNCERT
plane, which holds every per-pixel term) the pixel term is ``sum w^2 sigma^2``; the source's
own Poisson term ``F / g`` is added when the map does not include it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag
from nightpipe.photometry.background import _mean_std, _median_inplace

log = logging.getLogger(__name__)

SOURCE_FLAG_BITS = int(BAD_PIXEL_FLAGS | PixelFlag.SATURATED | PixelFlag.COSMIC_RAY | PixelFlag.NONLINEAR)
STATISTICS = {"median": 0, "mode": 1, "mean": 2}


@dataclass(frozen=True)
class ApertureResult:
    """Photometry of N sources in K apertures."""

    flux: np.ndarray
    """(N, K) background-subtracted fluxes."""
    flux_err: np.ndarray
    """(N, K) 1-sigma errors."""
    bkg_err: np.ndarray
    """(N, K) part of the error due to the sky estimate (``A sigma_S``)."""
    area: np.ndarray
    """(N, K) exact aperture areas inside the frame, pixels."""
    sky: np.ndarray
    """(N,) sky per pixel used for each source."""
    sky_std: np.ndarray
    """(N,) clipped standard deviation of the annulus pixels (NaN without annulus)."""
    sky_n: np.ndarray
    """(N,) annulus pixels kept after clipping (0 without annulus)."""
    flags: np.ndarray
    """(N,) PixelFlag bits (uint16) of the pixels in the largest aperture, plus EDGE and NEIGHBOUR."""


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


def _as_array(value: np.ndarray | float | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if value is None:
        return np.zeros((0, 0), dtype=np.float32)
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        return np.broadcast_to(arr, shape)
    if arr.shape != shape:
        raise PhotometryError(f"{name} shape {arr.shape} differs from the data shape {shape}")
    return arr


def aperture_photometry(
    data: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radii: np.ndarray | list[float] | tuple[float, ...],
    *,
    annulus: tuple[float, float] | None = None,
    statistic: Literal["median", "mode", "mean"] = "median",
    background: np.ndarray | float | None = None,
    background_err: np.ndarray | float | None = None,
    mask: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    uncertainty_includes_source: bool = False,
    gain: float = 1.0,
    read_noise: float = 0.0,
    dark: float = 0.0,
    saturation: float = np.inf,
    neighbour_radius: float | None = None,
    clip_sigma: float = 3.0,
    clip_iters: int = 5,
) -> ApertureResult:
    """Photometry of many sources in several circular apertures at once.

    Parameters
    ----------
    data
        The image (ADU), not background-subtracted.
    x, y
        Source centres, 0-based pixels.
    radii
        K aperture radii, pixels.
    annulus
        Inner and outer radius of the sky annulus, pixels. ``None``: use ``background``.
    statistic
        Annulus sky estimator on the clipped pixels: median, mode (3 median - 2 mean) or mean.
    background
        Sky per pixel (scalar or map) used when ``annulus`` is None (the global or 2-D background).
    background_err
        Error of that sky estimate per pixel (scalar), used in the error budget when ``annulus`` is None.
    mask
        uint16 PixelFlag plane; flagged pixels are left out of the annulus, their bits flag the
        source; NO_DATA pixels are left out of the apertures too.
    uncertainty
        Per-pixel standard deviation (ADU), e.g. the UNCERT plane of a calibrated frame.
    uncertainty_includes_source
        Whether ``uncertainty`` already includes the Poisson noise of the source's own light.
    gain, read_noise, dark
        e-/ADU, e- per pixel, e- per pixel accumulated over the exposure (CCD equation when no
        ``uncertainty`` is given).
    saturation
        Raw level at or above which a pixel is saturated (ADU).
    neighbour_radius
        Sources with another source closer than this get ``NEIGHBOUR`` (default: the largest radius).
    clip_sigma, clip_iters
        Clipping of the annulus pixels.

    Returns
    -------
    ApertureResult

    Examples
    --------
    >>> image = np.full((50, 50), 10.0)
    >>> image[25, 25] += 1000.0
    >>> res = aperture_photometry(image, np.array([25.0]), np.array([25.0]), [3.0], annulus=(8.0, 12.0))
    >>> round(float(res.flux[0, 0]), 6), float(res.sky[0])
    (1000.0, 10.0)
    """
    r, xs, ys, flagplane = _checked_inputs(data, x, y, radii, mask, gain)
    shape = data.shape
    var = _as_array(
        None if uncertainty is None else np.square(uncertainty, dtype=np.float32), shape, "uncertainty"
    )
    use_annulus = annulus is not None
    r_in, r_out, bkgmap = _sky_inputs(annulus, background, shape, statistic)
    sums, vsum, area, mapsum, sky, skystd, packed = _photometry_kernel(
        np.asarray(data, dtype=np.float32),
        flagplane,
        var,
        bkgmap,
        xs,
        ys,
        r,
        r_in,
        r_out,
        STATISTICS[statistic],
        float(clip_sigma),
        int(clip_iters),
        float(saturation),
        SOURCE_FLAG_BITS,
    )
    skyn = packed[0]
    flags = packed[1].astype(np.uint16)
    if use_annulus:
        flux, sky_level, sky_err, sky_total = _annulus_sky(sums, area, sky, skystd, skyn, statistic)
    else:
        flux, sky_level, sky_err, sky_total = _map_sky(sums, area, mapsum, xs.size, background_err)
    bkg_err = area * sky_err[:, None]
    if uncertainty is None:
        pixel_var = (
            area * (np.maximum(sky_total / np.maximum(area, 1e-12), 0.0) * gain + dark + read_noise**2)
        ) / gain**2
    else:
        pixel_var = vsum
    source_var = (
        0.0 if (uncertainty is not None and uncertainty_includes_source) else np.maximum(flux, 0.0) / gain
    )
    flux_err = np.sqrt(pixel_var + source_var + bkg_err**2)
    flags |= _neighbour_flags(xs, ys, float(r.max() if neighbour_radius is None else neighbour_radius))
    return ApertureResult(
        flux=flux,
        flux_err=flux_err,
        bkg_err=bkg_err,
        area=area,
        sky=np.asarray(sky_level, dtype=np.float64),
        sky_std=skystd,
        sky_n=skyn,
        flags=flags,
    )


def _checked_inputs(
    data: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radii: np.ndarray | list[float] | tuple[float, ...],
    mask: np.ndarray | None,
    gain: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Radii, positions (float64) and the flag plane (empty without a mask), checked."""
    if data.ndim != 2:
        raise PhotometryError(f"expected a 2-D image, got shape {data.shape}")
    if gain <= 0:
        raise PhotometryError(f"gain must be positive, got {gain}", hint="set camera.gain")
    r = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    if r.size == 0 or np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise PhotometryError(f"aperture radii must be positive, got {r.tolist()}")
    xs = np.ascontiguousarray(x, dtype=np.float64)
    ys = np.ascontiguousarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise PhotometryError("x and y must be 1-D arrays of the same length")
    shape = data.shape
    flagplane = np.zeros((0, 0), dtype=np.uint16) if mask is None else np.asarray(mask, dtype=np.uint16)
    if mask is not None and flagplane.shape != shape:
        raise PhotometryError(f"mask shape {flagplane.shape} differs from the data shape {shape}")
    return r, xs, ys, flagplane


def _sky_inputs(
    annulus: tuple[float, float] | None,
    background: np.ndarray | float | None,
    shape: tuple[int, ...],
    statistic: str,
) -> tuple[float, float, np.ndarray]:
    """The annulus radii (0, 0 without one) and the background map (empty with an annulus), checked."""
    if annulus is not None:
        r_in, r_out = float(annulus[0]), float(annulus[1])
        if not 0 <= r_in < r_out:
            raise PhotometryError(f"annulus radii must satisfy 0 <= inner < outer, got {annulus}")
        bkgmap = np.zeros((0, 0), dtype=np.float32)
    else:
        r_in = r_out = 0.0
        bkgmap = _as_array(0.0 if background is None else background, shape, "background")
    if statistic not in STATISTICS:
        raise PhotometryError(f"unknown annulus statistic {statistic!r}", hint="use median, mode or mean")
    return r_in, r_out, bkgmap


def _annulus_sky(
    sums: np.ndarray, area: np.ndarray, sky: np.ndarray, skystd: np.ndarray, skyn: np.ndarray, statistic: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fluxes, sky level, its error and the sky in each aperture, with the local annulus sky."""
    # error of the sky level: std/sqrt(n), times sqrt(pi/2) for a median
    factor = np.sqrt(np.pi / 2.0) if statistic != "mean" else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sky_err = factor * skystd / np.sqrt(np.maximum(skyn, 1))
    sky_err = np.where(skyn > 0, sky_err, np.nan)
    return sums - area * sky[:, None], sky, sky_err, area * sky[:, None]


def _map_sky(
    sums: np.ndarray, area: np.ndarray, mapsum: np.ndarray, n: int, background_err: np.ndarray | float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fluxes, sky level, its error and the sky in each aperture, with the background map."""
    flux = sums - mapsum
    with np.errstate(invalid="ignore", divide="ignore"):
        sky_level = mapsum[:, -1] / area[:, -1]
    sky_err = np.full(n, 0.0 if background_err is None else float(background_err))
    return flux, sky_level, sky_err, mapsum


def _neighbour_flags(x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    out = np.zeros(x.size, dtype=np.uint16)
    if x.size < 2 or radius <= 0:
        return out
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([x, y]))
    dist, _ = tree.query(np.column_stack([x, y]), k=2)
    out[dist[:, 1] < radius] = np.uint16(PixelFlag.NEIGHBOUR)
    return out
