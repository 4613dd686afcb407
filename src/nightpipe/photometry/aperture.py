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

import numpy as np

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag
from nightpipe.photometry.aperture_kernel import _photometry_kernel, circle_rect_overlap

log = logging.getLogger(__name__)

SOURCE_FLAG_BITS = int(BAD_PIXEL_FLAGS | PixelFlag.SATURATED | PixelFlag.COSMIC_RAY | PixelFlag.NONLINEAR)
STATISTICS = {"median": 0, "mode": 1, "mean": 2}

__all__ = ["SOURCE_FLAG_BITS", "STATISTICS", "ApertureResult", "aperture_photometry", "circle_rect_overlap"]


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
