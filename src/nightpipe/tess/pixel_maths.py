"""The pure array maths of pixel-file photometry: apertures, background, sums, centroids, systematics.

Each function takes arrays (cadences x rows x columns) and returns arrays; nothing here reads a
file. :mod:`nightpipe.tess.photometry` applies them to a pixel file (and re-exports them).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from nightpipe.errors import PhotometryError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

MAD_TO_STD = 1.4826


def median_image(flux: FloatArray, good: BoolArray | None = None, max_cadences: int = 1000) -> FloatArray:
    """Per-pixel median over cadences (of the ``good`` ones), ignoring NaNs.

    Long series are thinned to at most ``max_cadences`` evenly spaced cadences.
    """
    cube = flux if good is None or not good.any() else flux[good]
    if cube.shape[0] > max_cadences:  # evenly spaced cadences describe the static scene as well
        cube = cube[:: int(np.ceil(cube.shape[0] / max_cadences))]
    finite = np.isfinite(cube)
    if finite.all():  # the common case: a partial sort per pixel, pixels contiguous
        flat = np.ascontiguousarray(cube.reshape(cube.shape[0], -1).T)
        return np.asarray(np.median(flat, axis=1), dtype=np.float64).reshape(cube.shape[1:])
    filled = np.where(finite, cube, np.inf)
    counts = finite.sum(axis=0)
    # median of the finite values per pixel, without nanmedian's all-NaN warnings
    ordered = np.sort(filled, axis=0)
    lo = np.clip((counts - 1) // 2, 0, cube.shape[0] - 1)
    hi = np.clip(counts // 2, 0, cube.shape[0] - 1)
    med = 0.5 * (np.take_along_axis(ordered, lo[None], 0)[0] + np.take_along_axis(ordered, hi[None], 0)[0])
    return np.where(counts > 0, med, np.nan)


def threshold_aperture(
    image: FloatArray,
    threshold: float = 3.0,
    reference_pixel: tuple[float, float] | Literal["center"] | None = "center",
) -> BoolArray:
    """Pixels brighter than ``median + threshold * robust std`` of an image.

    When several separate regions pass, only the one holding the pixel nearest to
    ``reference_pixel`` (column, row; ``"center"`` is the image centre) is kept; ``None``
    keeps them all. This is the rule of lightkurve's ``create_threshold_mask``.

    Examples
    --------
    >>> img = np.zeros((5, 5)); img[2, 2] = 10.0; img[2, 3] = 8.0; img[0, 0] = 9.0
    >>> threshold_aperture(img).astype(int)[2].tolist()
    [0, 0, 1, 1, 0]
    """
    values = image[np.isfinite(image)]
    if values.size == 0:
        return np.zeros(image.shape, dtype=bool)
    centre = float(np.median(values))
    spread = MAD_TO_STD * float(np.median(np.abs(values - centre)))
    mask = np.nan_to_num(image, nan=-np.inf) >= centre + threshold * spread
    if reference_pixel is None or not mask.any():
        return mask
    if reference_pixel == "center":
        reference_pixel = (image.shape[1] / 2.0, image.shape[0] / 2.0)
    labels, _ = ndimage.label(mask)
    rows, cols = np.nonzero(labels)
    nearest = int(np.argmin(np.hypot(rows - reference_pixel[1], cols - reference_pixel[0])))
    return labels == labels[rows[nearest], cols[nearest]]


def background_mask(image: FloatArray, aperture: BoolArray, *, grow: int = 1) -> BoolArray:
    """Background pixels: finite, outside the aperture grown by ``grow`` pixels, and no
    brighter than the median of those remaining (so stars do not bias the sky)."""
    avoid = ndimage.binary_dilation(aperture, iterations=grow) if grow > 0 and aperture.any() else aperture
    candidates = np.isfinite(image) & ~avoid
    if candidates.sum() < 3:
        candidates = np.isfinite(image) & ~aperture
    if not candidates.any():
        return candidates
    return candidates & (image <= np.median(image[candidates]))


def background_per_cadence(flux: FloatArray, mask: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Per-pixel background of each cadence (median of the ``mask`` pixels) and its error.

    The error is the standard error of a median, ``1.2533 * std / sqrt(n)``.
    """
    if not mask.any():
        raise PhotometryError("no background pixels", hint="use a larger cut-out or background='file'")
    pixels = flux[:, mask]
    if np.isfinite(pixels).all():
        error = 1.2533 * np.std(pixels, axis=1) / np.sqrt(pixels.shape[1])
        return np.asarray(np.median(pixels, axis=1), dtype=np.float64), error
    n = np.isfinite(pixels).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        filled = np.where(np.isfinite(pixels), pixels, np.nan)
        level = np.full(flux.shape[0], np.nan)
        spread = np.full(flux.shape[0], np.nan)
        ok = n > 0
        if ok.any():
            level[ok] = np.nanmedian(filled[ok], axis=1)
            spread[ok] = np.nanstd(filled[ok], axis=1)
        error = 1.2533 * spread / np.sqrt(np.maximum(n, 1))
    return level, error


def aperture_sum(
    flux: FloatArray,
    flux_err: FloatArray,
    aperture: BoolArray,
    background: FloatArray | None = None,
    background_err: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Sum of the aperture pixels of each cadence, minus ``background`` (per pixel) times their number.

    Non-finite pixels count as zero (as in the SPOC SAP flux and lightkurve); a cadence with
    no finite aperture pixel gives NaN. The error adds the pixel errors and the background
    error (``npix * background_err``) in quadrature.
    """
    if aperture.shape != flux.shape[1:]:
        raise PhotometryError(f"aperture shape {aperture.shape} differs from the pixels {flux.shape[1:]}")
    if not aperture.any():
        raise PhotometryError("the aperture has no pixel", hint="lower the threshold or give an aperture")
    pixels = flux[:, aperture]
    finite = np.isfinite(pixels)
    npix = finite.sum(axis=1).astype(np.float64)
    total = np.where(finite, pixels, 0.0).sum(axis=1)
    errors = flux_err[:, aperture]
    variance = np.where(np.isfinite(errors) & finite, errors**2, 0.0).sum(axis=1)
    if background is not None:
        total = total - npix * background
        if background_err is not None:
            variance = variance + (npix * np.nan_to_num(background_err)) ** 2
    total = np.where(npix > 0, total, np.nan)
    error = np.where(npix > 0, np.sqrt(variance), np.nan)
    if not np.isfinite(flux_err[:, aperture]).any():
        error = np.full_like(total, np.nan)
    return total, error


def photon_noise(flux: FloatArray, background: FloatArray, exptime_s: float) -> FloatArray:
    """Photon-noise error of a flux in e-/s: ``sqrt((flux + background) * t) / t``.

    ``background`` is the background summed over the aperture, e-/s. Used only when the
    file gives no pixel errors (single-cadence images).

    Examples
    --------
    >>> photon_noise(np.array([100.0]), np.array([0.0]), 100.0).round(3).tolist()
    [1.0]
    """
    electrons = np.clip(np.nan_to_num(flux) + np.nan_to_num(background), 0.0, None) * exptime_s
    return np.sqrt(electrons) / exptime_s


def centroids(flux: FloatArray, aperture: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Flux-weighted centre (column, row) of the aperture pixels of each cadence, 0-based pixels."""
    rows, cols = np.nonzero(aperture)
    pixels = np.nan_to_num(flux[:, rows, cols])
    total = pixels.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        col = (pixels * cols).sum(axis=1) / total
        row = (pixels * rows).sum(axis=1) / total
    return col, row


def pld_regressors(flux: FloatArray, aperture: BoolArray, n_components: int = 5) -> FloatArray:
    """First-order pixel-level-decorrelation regressors: the leading principal components of the
    aperture pixels' fractional fluxes (each pixel divided by the aperture sum), which carry the
    pointing jitter but not the astrophysical signal."""
    pixels = np.nan_to_num(flux[:, aperture])
    total = pixels.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(total != 0, pixels / total, 0.0)
    centred = fractions - fractions.mean(axis=0)
    if centred.shape[0] < 2 or not np.any(centred):
        return np.zeros((flux.shape[0], 0))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = int(min(n_components, int((s > s[0] * 1e-8).sum())))
    return u[:, :k] * s[:k]


def regress_out(
    flux: FloatArray,
    flux_err: FloatArray,
    regressors: FloatArray,
    fit_mask: BoolArray,
) -> tuple[FloatArray, FloatArray]:
    """Remove the part of ``flux`` that is linear in ``regressors`` (columns), keeping its mean level.

    The coefficients are fitted by weighted least squares on the cadences of ``fit_mask``
    (good and, when known, out of transit, so that the transit is not fitted away).
    Returns the corrected flux and the coefficients (intercept first).
    """
    if regressors.ndim != 2 or regressors.shape[0] != flux.shape[0]:
        raise PhotometryError(f"regressors of shape {regressors.shape} for {flux.shape[0]} cadences")
    std = regressors[fit_mask].std(axis=0) if fit_mask.any() else np.zeros(regressors.shape[1])
    keep = np.isfinite(std) & (std > 0)
    reg = regressors[:, keep]
    mean = reg[fit_mask].mean(axis=0) if fit_mask.any() else np.zeros(reg.shape[1])
    scaled = (reg - mean) / std[keep]
    design = np.column_stack([np.ones(flux.shape[0]), scaled])
    usable = fit_mask & np.all(np.isfinite(design), axis=1) & np.isfinite(flux)
    if usable.sum() < design.shape[1] + 3:
        raise PhotometryError(
            f"too few cadences ({int(usable.sum())}) to fit {design.shape[1]} systematics terms",
            hint="use systematics='none' for short series",
        )
    weights = np.where(
        np.isfinite(flux_err) & (flux_err > 0), 1.0 / np.where(flux_err > 0, flux_err, 1.0), 1.0
    )
    w = weights[usable]
    coef, *_ = np.linalg.lstsq(design[usable] * w[:, None], flux[usable] * w, rcond=None)
    model = np.nan_to_num(design[:, 1:]) @ coef[1:]
    return flux - model, coef
