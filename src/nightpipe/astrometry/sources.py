"""Star lists for plate solving: sep detection, windowed centroids, brightest first."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nightpipe.errors import AstrometryError

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


def detect_stars(
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    sigma: float = 5.0,
    min_area: int = 5,
    max_stars: int = 300,
    saturation: float | None = None,
    saturated_pixels: np.ndarray | None = None,
    edge: int = 2,
    deblend_nthresh: int = 32,
) -> StarList:
    """Detect stars with sep and return the ``max_stars`` brightest, with windowed centroids.

    Parameters
    ----------
    data
        2-D image (any real dtype; NaN and infinite pixels are masked).
    mask
        Pixels to ignore (True or non-zero).
    sigma
        Detection threshold in units of the global background RMS.
    min_area
        Minimum number of connected pixels of a detection.
    max_stars
        Keep this many, brightest first.
    saturation
        Raw pixel level at which a star counts as saturated (default: the image maximum when
        at least 5 pixels reach it, otherwise none).
    saturated_pixels
        Boolean map of saturated pixels (from a calibrated frame's mask); a star with one
        within a pixel of its peak counts as saturated. Replaces ``saturation``.
    edge
        Detections whose centre is closer than this to the border are dropped.
    deblend_nthresh
        Deblending levels of sep (fewer is faster; 8 is plenty for star lists).

    Returns
    -------
    StarList

    Raises
    ------
    AstrometryError
        When the array is not 2-D or holds no finite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> img = 100 + 5000 * np.exp(-((xx - 20.3) ** 2 + (yy - 40.7) ** 2) / 4.0)
    >>> stars = detect_stars(img + np.random.default_rng(1).normal(0, 3, img.shape))
    >>> round(float(stars.x[0]), 1), round(float(stars.y[0]), 1)
    (20.3, 40.7)
    """
    import sep

    arr = np.ascontiguousarray(data, dtype=np.float32)
    if arr.ndim != 2:
        raise AstrometryError(f"need a 2-D image, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if mask is not None:
        bad |= np.asarray(mask).astype(bool)
    if bad.all():
        raise AstrometryError("the image has no finite pixels")
    if bad.any():  # a typical level for masked pixels (a sparse sample's median is as good)
        arr = arr.copy()
        step = max(1, int(np.sqrt(arr.size / 20_000)))
        sample = arr[::step, ::step][~bad[::step, ::step]]
        arr[bad] = np.median(sample if sample.size else arr[~bad])
    sat_level = saturation
    if sat_level is None and saturated_pixels is None:
        top = float(arr.max())
        sat_level = top if np.count_nonzero(arr >= top) >= 5 else np.inf
    sat_level = np.inf if sat_level is None else sat_level
    bkg = sep.Background(arr, mask=bad)
    sub = arr - bkg.back()
    rms = float(bkg.globalrms)
    if not np.isfinite(rms) or rms <= 0:
        rms = float(np.std(sub[~bad])) or 1.0
    sep.set_extract_pixstack(max(300_000, arr.size))
    try:
        objects = sep.extract(
            sub, sigma, err=rms, mask=bad, minarea=min_area, deblend_nthresh=deblend_nthresh
        )
    except Exception as exc:  # sep raises plain Exception on overflow of its buffers
        raise AstrometryError(f"source detection failed ({exc})") from None
    height, width = arr.shape
    ok = (
        (objects["x"] >= edge)
        & (objects["x"] <= width - 1 - edge)
        & (objects["y"] >= edge)
        & (objects["y"] <= height - 1 - edge)
        & np.isfinite(objects["flux"])
        & (objects["flux"] > 0)
    )
    objects = objects[ok]
    order = np.argsort(-objects["flux"], kind="stable")[:max_stars]
    objects = objects[order]
    if objects.size == 0:
        empty = np.empty(0)
        return StarList(empty, empty, empty, empty, np.empty(0, bool), np.nan, (height, width))
    fwhm = float(np.median(2.0 * np.sqrt(np.log(2.0) * (objects["a"] ** 2 + objects["b"] ** 2))))
    sig = np.full(objects.size, max(fwhm, 1.0) / 2.3548)
    wx, wy, wflag = sep.winpos(sub, objects["x"], objects["y"], sig, mask=bad, subpix=0)
    good = (wflag == 0) & (np.hypot(wx - objects["x"], wy - objects["y"]) < max(fwhm, 1.5))
    x = np.where(good, wx, objects["x"])
    y = np.where(good, wy, objects["y"])
    if saturated_pixels is not None:  # a saturated pixel within one pixel of the peak
        sat = np.asarray(saturated_pixels, bool)
        yc, xc = np.asarray(objects["ycpeak"], int), np.asarray(objects["xcpeak"], int)
        saturated = np.zeros(objects.size, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                saturated |= sat[np.clip(yc + dy, 0, height - 1), np.clip(xc + dx, 0, width - 1)]
    else:
        saturated = objects["peak"] + bkg.back()[objects["ycpeak"], objects["xcpeak"]] >= 0.999 * sat_level
    log.debug("detected %d stars (kept %d), fwhm %.2f px", ok.sum(), objects.size, fwhm)
    return StarList(
        x=np.asarray(x, float),
        y=np.asarray(y, float),
        flux=np.asarray(objects["flux"], float),
        peak=np.asarray(objects["peak"], float),
        saturated=np.asarray(saturated, bool),
        fwhm_px=fwhm,
        shape=(height, width),
    )
