"""Aperture photometry of TESS and Kepler/K2 pixel files.

The maths are pure functions on arrays (apertures, background, sums, centroids,
systematics regression); :func:`photometer` applies them to a
:class:`~nightpipe.tess.readers.PixelFile` and returns a :class:`PixelPhotometry`, whose
:meth:`~PixelPhotometry.to_lightcurve` gives the same
:class:`~nightpipe.timeseries.lightcurve.LightCurve` as a ground-based night, so that
detrending, transit fits, exports and plots are shared.

The array maths are in :mod:`nightpipe.tess.pixel_maths` (re-exported here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import PhotometryError
from nightpipe.tess.pixel_maths import (
    MAD_TO_STD,
    BoolArray,
    FloatArray,
    aperture_sum,
    background_mask,
    background_per_cadence,
    centroids,
    median_image,
    photon_noise,
    pld_regressors,
    regress_out,
    threshold_aperture,
)
from nightpipe.tess.quality import BitmaskName, bitmask_value, good_cadences
from nightpipe.tess.readers import PixelFile

if TYPE_CHECKING:
    from nightpipe.timeseries.lightcurve import LightCurve

log = logging.getLogger(__name__)

__all__ = [
    "MAD_TO_STD",
    "ApertureChoice",
    "BackgroundChoice",
    "BoolArray",
    "FloatArray",
    "PixelPhotometry",
    "SystematicsChoice",
    "aperture_sum",
    "background_mask",
    "background_per_cadence",
    "centroids",
    "choose_aperture",
    "median_image",
    "photometer",
    "photon_noise",
    "pld_regressors",
    "regress_out",
    "threshold_aperture",
]

ApertureChoice = Literal["auto", "pipeline", "threshold"]
BackgroundChoice = Literal["auto", "file", "pixels", "none"]
SystematicsChoice = Literal["none", "regression", "pld"]


# --------------------------------------------------------------------------- orchestration


@dataclass(frozen=True, eq=False)
class PixelPhotometry:
    """Aperture photometry of every cadence of a pixel file.

    Attributes
    ----------
    time
        BJD_TDB (or the scale of ``meta["time_scale"]``) of every cadence.
    flux, flux_err
        Background-subtracted aperture flux, e-/s (systematics-corrected when asked).
    raw_flux
        The flux before the systematics correction.
    background
        Per-pixel background of each cadence, e-/s (what was subtracted, from the file or pixels).
    centroid_col, centroid_row
        Flux-weighted centre in the cut-out, 0-based pixels.
    quality
        The file's quality word per cadence.
    good
        Cadences kept: quality passes the bitmask, time and flux finite.
    aperture, background_pixels
        The masks used (``background_pixels`` is ``None`` when the background came from the file).
    meta
        Provenance: file, target, mission, aperture source, background source, bitmask,
        systematics method, time source.
    """

    time: FloatArray
    flux: FloatArray
    flux_err: FloatArray
    raw_flux: FloatArray
    background: FloatArray
    centroid_col: FloatArray
    centroid_row: FloatArray
    quality: NDArray[np.int64]
    good: BoolArray
    aperture: BoolArray
    background_pixels: BoolArray | None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_lightcurve(self, *, only_good: bool = True, normalize: bool = True) -> LightCurve:
        """This photometry as a :class:`nightpipe.timeseries.lightcurve.LightCurve`.

        Parameters
        ----------
        only_good
            Keep only the :attr:`good` cadences.
        normalize
            Divide by the median flux (relative flux, as for a differential ground light curve).
        """
        from nightpipe.timeseries.lightcurve import LightCurve

        keep = self.good if only_good else np.isfinite(self.time)
        err = np.where(np.isfinite(self.flux_err), self.flux_err, np.nan)
        lc = LightCurve(
            time=self.time[keep],
            flux=self.flux[keep],
            flux_err=err[keep],
            target_flux=self.raw_flux[keep],
            aux={
                "sky": self.background[keep],
                "x": self.centroid_col[keep],
                "y": self.centroid_row[keep],
            },
            meta={**self.meta, "quality": self.quality[keep].tolist()},
        )
        return lc.normalize() if normalize and keep.any() else lc


def choose_aperture(
    pixels: PixelFile,
    aperture: ApertureChoice | BoolArray,
    image: Callable[[], FloatArray],
    *,
    threshold: float = 3.0,
) -> tuple[BoolArray, str]:
    """The aperture mask to use and a word saying where it came from."""
    if isinstance(aperture, np.ndarray):
        mask = np.asarray(aperture, dtype=bool)
        if mask.shape != pixels.shape:
            raise PhotometryError(
                f"custom aperture of shape {mask.shape} for pixels of shape {pixels.shape}",
                path=pixels.path,
                hint="give a boolean mask of the cut-out's shape",
            )
        return mask, "custom"
    if aperture in ("auto", "pipeline"):
        mask_or_none = pixels.pipeline_aperture
        if mask_or_none is not None:
            return mask_or_none, "pipeline"
        if aperture == "pipeline":
            raise PhotometryError(
                "the file has no pipeline aperture (APERTURE bit 2)",
                path=pixels.path,
                hint="use aperture='threshold' (CLI: --aperture threshold)",
            )
    if aperture not in ("auto", "threshold"):
        raise PhotometryError(f"unknown aperture choice {aperture!r}", hint="auto, pipeline or threshold")
    mask = threshold_aperture(image(), threshold)
    if not mask.any():
        raise PhotometryError(
            f"no pixel above {threshold} sigma",
            path=pixels.path,
            hint="lower the threshold or give an aperture",
        )
    return mask, f"threshold {threshold:g} sigma"


def photometer(
    pixels: PixelFile,
    *,
    aperture: ApertureChoice | BoolArray = "auto",
    background: BackgroundChoice = "auto",
    quality_bitmask: BitmaskName | int = "default",
    threshold: float = 3.0,
    systematics: SystematicsChoice = "none",
    transit_mask: BoolArray | None = None,
    pld_components: int = 5,
) -> PixelPhotometry:
    """Aperture photometry of a pixel file.

    Parameters
    ----------
    pixels
        What :func:`~nightpipe.tess.readers.read_pixel_file` returned.
    aperture
        ``auto`` (the pipeline aperture when present, else a threshold aperture),
        ``pipeline``, ``threshold``, or a boolean mask of the cut-out's shape.
    background
        ``file`` (use the file's background: SPOC fluxes are already background-subtracted,
        otherwise ``FLUX_BKG`` is subtracted), ``pixels`` (median of background pixels, per
        cadence, subtracted from the file's fluxes), ``none``, or ``auto`` (``file`` when the
        file is background-subtracted, else ``pixels``).
    quality_bitmask
        Cadences whose quality word has any of these bits are not ``good``.
    threshold
        Sigma of the threshold aperture.
    systematics
        ``none``; ``regression`` (linear in background and centroid shifts); ``pld``
        (first-order pixel-level decorrelation, ``pld_components`` principal components).
    transit_mask
        True for cadences in transit, excluded from the systematics fit.

    Raises
    ------
    PhotometryError
        For an unusable aperture, no background pixels, or too few cadences for the correction.
    """
    bitmask = bitmask_value(pixels.mission, quality_bitmask)
    good = good_cadences(pixels.quality, bitmask) & np.isfinite(pixels.time)
    cache: dict[str, FloatArray] = {}

    def image() -> FloatArray:  # the median image, computed only when an aperture or sky needs it
        if "median" not in cache:
            cache["median"] = median_image(pixels.flux, good)
        return cache["median"]

    mask, aperture_source = choose_aperture(pixels, aperture, image, threshold=threshold)
    source = background
    if source == "auto":
        source = "file" if pixels.background_subtracted else "pixels"
    flux = pixels.flux
    bkg_mask: BoolArray | None = None
    n = pixels.n_cadences
    if source == "file":
        if pixels.background_subtracted:
            level = (
                np.nanmean(pixels.flux_bkg[:, mask], axis=1) if pixels.flux_bkg is not None else np.zeros(n)
            )
            total, error = aperture_sum(flux, pixels.flux_err, mask)
        elif pixels.flux_bkg is not None:
            level = np.nanmean(pixels.flux_bkg[:, mask], axis=1)
            total, error = aperture_sum(flux - pixels.flux_bkg, pixels.flux_err, mask)
        else:
            raise PhotometryError(
                "the file has no background (not subtracted, no FLUX_BKG)",
                path=pixels.path,
                hint="use background='pixels' (CLI: --background pixels)",
            )
    elif source == "pixels":
        bkg_mask = background_mask(image(), mask)
        level, level_err = background_per_cadence(flux, bkg_mask)
        total, error = aperture_sum(flux, pixels.flux_err, mask, level, level_err)
    elif source == "none":
        level = np.zeros(n)
        total, error = aperture_sum(flux, pixels.flux_err, mask)
    else:
        raise PhotometryError(f"unknown background choice {background!r}", hint="auto, file, pixels or none")
    error_source = "file"
    if not np.isfinite(error).any() and np.isfinite(pixels.exptime_s) and pixels.exptime_s > 0:
        error = photon_noise(total, level * mask.sum(), pixels.exptime_s)
        error_source = "photon noise of flux and background"
    col, row = centroids(flux, mask)
    good &= np.isfinite(total)
    corrected = total
    if systematics != "none":
        fit_mask = good & ~(transit_mask if transit_mask is not None else np.zeros(n, dtype=bool))
        if systematics == "regression":
            regressors = np.column_stack([level, col, row, col**2, row**2, col * row])
        elif systematics == "pld":
            regressors = pld_regressors(flux, mask, pld_components)
        else:
            raise PhotometryError(
                f"unknown systematics choice {systematics!r}", hint="none, regression or pld"
            )
        corrected, _ = regress_out(total, error, regressors, fit_mask)
    meta = {
        "file": str(pixels.path),
        "target": pixels.target,
        "mission": pixels.mission,
        "kind": pixels.kind,
        "aperture_source": aperture_source,
        "aperture_px": int(mask.sum()),
        "background_source": source,
        "quality_bitmask": bitmask,
        "systematics": systematics,
        "time_scale": "BJD_TDB" if pixels.time_system.is_bjd_tdb else "JD_TDB",
        "time_source": pixels.time_system.description,
        "flux_unit": "e-/s",
        "flux_err_source": error_source,
    }
    log.info(
        "%s: %d cadences, %d good, aperture %s (%d px), background %s",
        pixels.path.name,
        n,
        int(good.sum()),
        aperture_source,
        int(mask.sum()),
        source,
    )
    return PixelPhotometry(
        time=pixels.time_bjd,
        flux=corrected,
        flux_err=error,
        raw_flux=total,
        background=level,
        centroid_col=col,
        centroid_row=row,
        quality=pixels.quality,
        good=good,
        aperture=mask,
        background_pixels=bkg_mask,
        meta=meta,
    )
