"""Star lists for plate solving: the frame's shared detection (the photometry's), brightest first."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nightpipe.errors import AstrometryError
from nightpipe.photometry.frame_sources import FrameDetection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StarList:
    """Detected stars, brightest first; ``x``, ``y`` are 0-based pixel centres.

    ``saturated`` marks stars whose peak reached the saturation level; their centroids are
    less precise and they are left out of astrometric fits when enough others remain.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    peak: np.ndarray
    saturated: np.ndarray
    fwhm_px: float
    shape: tuple[int, int]

    def __len__(self) -> int:
        return int(self.x.size)

    def brightest(self, n: int) -> StarList:
        """The ``n`` brightest stars."""
        return self.select(np.arange(min(n, len(self))))

    def select(self, keep: np.ndarray) -> StarList:
        """The stars selected by a boolean mask or an index array (order kept)."""
        return StarList(
            self.x[keep],
            self.y[keep],
            self.flux[keep],
            self.peak[keep],
            self.saturated[keep],
            self.fwhm_px,
            self.shape,
        )

    @property
    def xy(self) -> np.ndarray:
        """Positions as an N x 2 array."""
        return np.column_stack([self.x, self.y])


def frame_stars(data: np.ndarray, found: FrameDetection, *, max_stars: int = 300, edge: int = 2) -> StarList:
    """The star list of a frame for solving, from its shared detection (brightest first).

    The sources of :func:`~nightpipe.photometry.frame_sources.detect_frame` (the photometry's
    detection: mesh background, windowed centroids) closer than ``edge`` pixels to the border or
    without positive isophotal flux are left out; the ``max_stars`` brightest by isophotal flux
    are kept. A star counts as saturated when its source carries the ``SATURATED`` flag; the
    list's FWHM is the moments' FWHM of its stars (as the photometry measures it).

    Parameters
    ----------
    data
        The image the detection was run on (2-D).
    found
        Its detection.
    max_stars
        Keep this many, brightest first.
    edge
        Sources whose centre is closer than this to the border are dropped.

    Raises
    ------
    AstrometryError
        When the array is not 2-D.

    Examples
    --------
    >>> from nightpipe.config import PhotometryConfig
    >>> from nightpipe.photometry.frame_sources import detect_frame
    >>> yy, xx = np.mgrid[:64, :64]
    >>> img = 100 + 5000 * np.exp(-((xx - 20.3) ** 2 + (yy - 40.7) ** 2) / 4.0)
    >>> img = img + np.random.default_rng(1).normal(0, 3, img.shape)
    >>> stars = frame_stars(img, detect_frame(img, PhotometryConfig(background_box=16)))
    >>> round(float(stars.x[0]), 1), round(float(stars.y[0]), 1)
    (20.3, 40.7)
    """
    from nightpipe.frames.flags import PixelFlag
    from nightpipe.photometry.shape import frame_fwhm, measure_shapes

    if data.ndim != 2:
        raise AstrometryError(f"need a 2-D image, got shape {data.shape}")
    height, width = data.shape
    det = found.detections
    ok = (
        np.isfinite(det.x)
        & np.isfinite(det.y)
        & (det.x >= edge)
        & (det.x <= width - 1 - edge)
        & (det.y >= edge)
        & (det.y <= height - 1 - edge)
        & np.isfinite(det.flux_iso)
        & (det.flux_iso > 0)
    )
    idx = np.flatnonzero(ok)
    keep = idx[np.argsort(-det.flux_iso[idx], kind="stable")][:max_stars]
    if keep.size == 0:
        empty = np.empty(0)
        return StarList(empty, empty, empty, empty, np.empty(0, bool), np.nan, (height, width))
    x = np.ascontiguousarray(det.x[keep], dtype=np.float64)
    y = np.ascontiguousarray(det.y[keep], dtype=np.float64)
    flags = det.flags[keep]
    sub = np.asarray(data, dtype=np.float32) - found.background.level
    shapes = measure_shapes(sub, x, y, fwhm_guess=3.0)
    fwhm, _scatter, _n = frame_fwhm(shapes.fwhm, ellipticity=shapes.ellipticity, flags=flags)
    log.debug("%d sources, %d kept for solving, fwhm %.2f px", len(det), keep.size, fwhm)
    return StarList(
        x=x,
        y=y,
        flux=np.ascontiguousarray(det.flux_iso[keep], dtype=np.float64),
        peak=np.ascontiguousarray(det.peak[keep], dtype=np.float64),
        saturated=(flags & np.uint16(PixelFlag.SATURATED)) != 0,
        fwhm_px=float(fwhm),
        shape=(height, width),
    )
