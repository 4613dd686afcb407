"""Source detection: thresholding a smoothed, background-subtracted frame, deblending, centroids.

The frame minus its background is smoothed by a small Gaussian (the matched filter of a
star), thresholded at ``detect_sigma x RMS`` and split into 8-connected segments; segments
smaller than ``min_area`` pixels are dropped. Every local maximum of the smoothed frame in a
segment is a candidate source; in a segment with several maxima (a blend) a fainter maximum
is kept only when it stands out from the saddle towards its brighter neighbour by more than
``detect_sigma`` times the smoothed noise and carries at least ``deblend_contrast`` of the
brighter peak. Positions are Gaussian-windowed centroids (SExtractor's XWIN/YWIN), iterated
from the peak pixel. Sources near the edge, touching flagged or saturated pixels, or blended
carry the matching :class:`~nightpipe.frames.flags.PixelFlag` bits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nightpipe.errors import PhotometryError
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag
from nightpipe.photometry.centroids import _centroids, _peak_and_flags, windowed_centroids
from nightpipe.photometry.segments import _deblend, _label, _smooth_threshold

log = logging.getLogger(__name__)


__all__ = ["SMOOTH_FWHM", "Detections", "detect_sources", "windowed_centroids"]

SMOOTH_FWHM = 2.0  # px; the detection filter (SExtractor's default gauss_2.0)


@dataclass(frozen=True)
class Detections:
    """Sources found on a frame (all arrays of length N, positions 0-based pixels)."""

    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray
    """Highest background-subtracted pixel value near the centroid."""
    npix: np.ndarray
    """Pixels of the source's segment above the threshold."""
    flux_iso: np.ndarray
    """Background-subtracted sum over the segment (shared by blended sources)."""
    flags: np.ndarray
    """PixelFlag bits (uint16): SATURATED, bad pixels, EDGE, BLENDED."""

    def __len__(self) -> int:
        return int(self.x.size)


def detect_sources(
    data: np.ndarray,
    background: np.ndarray | float,
    rms: np.ndarray | float,
    *,
    mask: np.ndarray | None = None,
    detect_sigma: float = 5.0,
    min_area: int = 5,
    deblend_contrast: float = 0.005,
    edge_margin: int = 10,
    saturation: float = np.inf,
    smooth_fwhm: float = SMOOTH_FWHM,
    centroid_fwhm: float | None = None,
) -> Detections:
    """Find the sources of a frame.

    Parameters
    ----------
    data
        The image (not background-subtracted).
    background, rms
        Sky level and noise: per-pixel maps (:func:`~nightpipe.photometry.background.mesh_background`)
        or scalars.
    mask
        uint16 PixelFlag bits (non-zero pixels are never detected; their bits flag the sources).
    detect_sigma
        Threshold, in units of ``rms``, applied to the smoothed frame.
    min_area
        Fewest connected pixels above the threshold.
    deblend_contrast
        Least peak ratio for a fainter peak of a blend to count as a source.
    edge_margin
        Sources closer than this to the edge get ``EDGE``.
    saturation
        Raw level at or above which a pixel is saturated.
    smooth_fwhm
        FWHM of the Gaussian detection filter, pixels.
    centroid_fwhm
        FWHM of the centroiding window (default: ``smooth_fwhm``; pass the frame's FWHM when known).

    Returns
    -------
    Detections
        Sorted by decreasing peak.

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = 10.0 + 500.0 * np.exp(-((xx - 30.3) ** 2 + (yy - 20.6) ** 2) / (2 * 1.5**2))
    >>> found = detect_sources(image, 10.0, 1.0)
    >>> len(found), round(float(found.x[0]), 2), round(float(found.y[0]), 2)
    (1, 30.3, 20.6)
    """
    bkg, noise, flagmask = _frame_planes(data, background, rms, mask)
    shape = data.shape
    bad_bits = int(BAD_PIXEL_FLAGS | PixelFlag.NO_DATA)
    kernel = _detection_kernel(smooth_fwhm)
    smooth, above = _smooth_threshold(data, bkg, flagmask, bad_bits, kernel, noise, float(detect_sigma))
    labels, nlab, areas, flux_sums, py, px = _label(above, smooth)
    if nlab == 0 or py.size == 0:
        return _empty()
    seg = labels[py, px]
    big = areas[seg] >= min_area
    py, px, seg = py[big], px[big], seg[big]
    if py.size == 0:
        return _empty()
    # noise of the smoothed image: a separable kernel k(x)k(y) scales white noise by sum(k^2)
    smooth_noise = noise * np.float32(np.sum(kernel**2))
    keep, blended = _deblend(smooth, py, px, seg, smooth_noise, float(detect_sigma), float(deblend_contrast))
    py, px, seg, blended = py[keep], px[keep], seg[keep], blended[keep]
    cfwhm = centroid_fwhm if centroid_fwhm is not None else max(smooth_fwhm, 2.0)
    x, y = _centroids(
        data, bkg, flagmask, bad_bits, px.astype(np.float64), py.astype(np.float64), cfwhm / 2.3548, 10
    )
    peak, flags = _peak_and_flags(
        data, bkg, flagmask, x, y, max(1.5, cfwhm), float(saturation), int(BAD_PIXEL_FLAGS | 1 | 8 | 16)
    )
    flags |= np.where(blended, np.uint16(PixelFlag.BLENDED), np.uint16(0))
    flags |= _edge_flags(x, y, shape, edge_margin)
    order = np.argsort(-peak, kind="stable")
    log.debug("detected %d sources in %d segments", x.size, nlab)
    return Detections(
        x=x[order],
        y=y[order],
        peak=peak[order],
        npix=areas[seg][order].astype(np.int32),
        flux_iso=flux_sums[seg][order].astype(np.float64),
        flags=flags[order].astype(np.uint16),
    )


def _empty() -> Detections:
    f = np.zeros(0, dtype=np.float64)
    return Detections(
        x=f,
        y=f.copy(),
        peak=np.zeros(0, dtype=np.float32),
        npix=np.zeros(0, dtype=np.int32),
        flux_iso=f.copy(),
        flags=np.zeros(0, dtype=np.uint16),
    )


def _frame_planes(
    data: np.ndarray, background: np.ndarray | float, rms: np.ndarray | float, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background, noise (float32, broadcast to the frame) and flag planes (empty without a mask)."""
    if data.ndim != 2:
        raise PhotometryError(f"expected a 2-D image, got shape {data.shape}")
    shape = data.shape
    bkg = np.broadcast_to(np.asarray(background, dtype=np.float32), shape)
    noise = np.broadcast_to(np.asarray(rms, dtype=np.float32), shape)
    if mask is None:
        flagmask = np.zeros((0, 0), dtype=np.uint16)
    else:
        flagmask = np.asarray(mask, dtype=np.uint16)
        if flagmask.shape != shape:
            raise PhotometryError(f"mask shape {flagmask.shape} differs from the data shape {shape}")
    return bkg, noise, flagmask


def _detection_kernel(smooth_fwhm: float) -> np.ndarray:
    """The 1-D Gaussian of the separable detection filter, normalised to unit sum."""
    sigma_s = smooth_fwhm / 2.3548
    half = max(1, int(np.ceil(2.5 * sigma_s)))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_s) ** 2)
    kernel /= kernel.sum()
    return kernel


def _edge_flags(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...], edge_margin: int) -> np.ndarray:
    """``EDGE`` where a source lies closer than ``edge_margin`` to the frame's edge, else 0."""
    ny, nx = shape
    near_edge = (
        (x < edge_margin) | (y < edge_margin) | (x > nx - 1 - edge_margin) | (y > ny - 1 - edge_margin)
    )
    return np.where(near_edge, np.uint16(PixelFlag.EDGE), np.uint16(0))
