"""Cosmic-ray detection: astroscrappy (L.A.Cosmic) on the whole frame, or a fast windowed mode.

``full`` runs :func:`astroscrappy.detect_cosmics` on the whole frame.

``fast`` gives astroscrappy's answer at a fraction of the cost by running it only where a
cosmic ray can be. L.A.Cosmic flags a pixel in its first pass only if its Laplacian
signal-to-noise ``S' = S - med5(S)`` exceeds ``sigclip``, where ``S = L+ / (2 N)`` and the
noise ``N = sqrt(med5(data) + rn**2)``. Since ``med5(S) >= 0`` and the 5x5 minimum is at
most the 5x5 (separable) median, ``S_screen = L+ / (2 sqrt(min5(data) + rn**2)) > sigclip``
holds for every such pixel: this screen, computed with a few vectorised array operations,
is a superset of astroscrappy's first-pass candidates. Candidates that also fail a
relaxed version of the fine-structure (star rejection) test, computed only at candidate
pixels, are dropped. Later L.A.Cosmic iterations and the neighbour growth only add pixels
next to earlier detections, so astroscrappy is run on small windows around the surviving
candidates (``grow`` trusted pixels around them plus ``context`` pixels of input for its
median filters) and its flags are kept inside the trusted part. On frames with a few
hundred cosmic rays this examines a few percent of the pixels; ``benchmarks/bench_cosmics.py``
measures the speed-up and the agreement with the full run.

Undersampled stars (FWHM of about 2 px) have cores as sharp as L.A.Cosmic's classic
fine-structure test allows for a cosmic ray, so it flags them. With ``psf_veto`` (the
default) every flagged group is then tested against the frame's PSF
(:func:`reject_psf_like`): a cosmic ray is sharper than the PSF, so at the group's peak
``ln(peak / sqrt(n1 * n2))`` along a row or column (``n1``, ``n2`` the two neighbours; for a
Gaussian this does not depend on where in the pixel the star is centred) exceeds what the
frame's stars show, or there is no light beside it along a row or a column; a group whose
peak is no sharper than the stars' (noise allowed for) is a star core and is unflagged
(a hit on the star's wing that merged with the core stays flagged). The PSF is measured on
the brightest isolated unsaturated stars of the frame (:func:`estimate_psf`) unless
``psf_fwhm`` is given; frames with too few stars get no veto. The veto runs after
astroscrappy in both modes, so ``fast`` still equals ``full`` where it did before.

astroscrappy's matched-filter fine structure (``fsmode="convolve"``, ``psffwhm``) is
available as ``fine_structure="psf"``. On the HAT-P-32 frames it also spares the star
cores, but on the real GMOS frame it drops the two known long tracks (8 of 169 pixels kept
at ``psffwhm`` 1.5-2.5), so it is not the default.

This module runs astroscrappy and holds the entry points (:func:`detect_cosmics`); the
parameters are in :mod:`~nightpipe.calib.cosmics_params`, the screen in
:mod:`~nightpipe.calib.cosmics_screen` (its compiled kernels in
:mod:`~nightpipe.calib.cosmics_kernels`) and the PSF and its veto in :mod:`~nightpipe.calib.cosmics_psf`.
"""

from __future__ import annotations

from typing import Any

import astroscrappy
import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

from nightpipe.calib.cosmics_params import (
    FINE_STRUCTURES,
    MAX_PSF_FWHM,
    MIN_PSF_FWHM,
    MODES,
    PSF_MODELS,
    CosmicParams,
    CosmicResult,
)
from nightpipe.calib.cosmics_psf import (
    PsfShape,
    axis_sharpness,
    estimate_psf,
    gaussian_sharpness,
    reject_psf_like,
    resolve_psf,
)
from nightpipe.calib.cosmics_screen import laplacian_plus, screen_candidates
from nightpipe.errors import CalibrationError


def _check(data: np.ndarray, params: CosmicParams) -> np.ndarray:
    if data.ndim != 2:
        raise CalibrationError(f"cosmic-ray detection needs a 2-D image, got {data.ndim} dimensions")
    if params.gain <= 0:
        raise CalibrationError(f"gain {params.gain!r} must be positive", hint="set camera.gain")
    if params.fine_structure not in FINE_STRUCTURES:
        raise CalibrationError(
            f"unknown fine-structure mode {params.fine_structure!r}", hint=f"use one of {FINE_STRUCTURES}"
        )
    if params.psf_model not in PSF_MODELS:
        raise CalibrationError(f"unknown PSF model {params.psf_model!r}", hint=f"use one of {PSF_MODELS}")
    if params.psf_fwhm is not None and not (0 < params.psf_fwhm <= MAX_PSF_FWHM):
        raise CalibrationError(
            f"PSF FWHM {params.psf_fwhm!r} px is not in (0, {MAX_PSF_FWHM:g}]",
            hint="give the frame's seeing FWHM in pixels, or None to estimate it",
        )
    return np.ascontiguousarray(data, dtype=np.float32)


def _scrappy(
    data: np.ndarray, inmask: np.ndarray | None, params: CosmicParams, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    with threadpool_limits(limits=threads, user_api="openmp"):
        return _scrappy_call(data, inmask, params)


def _scrappy_call(
    data: np.ndarray, inmask: np.ndarray | None, params: CosmicParams
) -> tuple[np.ndarray, np.ndarray]:
    mask, cleaned = astroscrappy.detect_cosmics(
        data,
        inmask=inmask,
        sigclip=params.sigclip,
        sigfrac=params.sigfrac,
        objlim=params.objlim,
        gain=params.gain,
        readnoise=params.read_noise,
        satlevel=params.saturation * params.gain,
        niter=params.niter,
        sepmed=True,
        cleantype="meanmask",
        **_fine_structure_args(params),
    )
    return np.asarray(mask, dtype=bool), np.asarray(cleaned, dtype=np.float32)


def _fine_structure_args(params: CosmicParams) -> dict[str, Any]:
    """astroscrappy's fine-structure keywords for resolved ``params``."""
    if params.fine_structure == "median" or params.psf_fwhm is None:
        return {"fsmode": "median"}
    size = max(7, 2 * int(np.ceil(1.5 * params.psf_fwhm)) + 1)
    return {"fsmode": "convolve", "psfmodel": params.psf_model, "psffwhm": params.psf_fwhm, "psfsize": size}


def fill_bad_pixels(data: np.ndarray, bad: np.ndarray, size: int = 5) -> np.ndarray:
    """A copy of ``data`` with ``bad`` pixels replaced by the median of their good neighbours.

    Dead columns, hot pixels and NaNs would otherwise look like sharp features to
    L.A.Cosmic and drag their neighbours into the cosmic-ray mask. Pixels without a good
    neighbour in the ``size`` x ``size`` box get the median of the whole frame.
    """
    out = data.copy()
    ys, xs = np.nonzero(bad)
    if len(ys) == 0:
        return out
    half = size // 2
    padded = np.pad(np.where(bad, np.nan, data).astype(np.float32), half, constant_values=np.nan)
    offsets = np.arange(size)
    good_all = data[~bad]
    fallback = np.float32(np.median(good_all)) if good_all.size else np.float32(0)
    for start in range(0, len(ys), 50000):
        yy, xx = ys[start : start + 50000], xs[start : start + 50000]
        patch = padded[yy[:, None, None] + offsets[None, :, None], xx[:, None, None] + offsets[None, None, :]]
        flat = patch.reshape(len(yy), -1)
        has_good = np.isfinite(flat).any(axis=1)
        values = np.full(len(yy), fallback, dtype=np.float32)
        if has_good.any():
            values[has_good] = np.nanmedian(flat[has_good], axis=1)
        out[yy, xx] = values
    return out


def _prepare_inmask(
    data: np.ndarray, inmask: np.ndarray | None, bad: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fill non-finite and ``bad`` pixels (astroscrappy cannot take NaN) and mask them."""
    nonfinite = ~np.isfinite(data)
    fill = nonfinite if bad is None else (np.asarray(bad, dtype=bool) | nonfinite)
    mask = fill if inmask is None else (np.asarray(inmask, dtype=bool) | fill)
    if fill.any():
        data = fill_bad_pixels(data, fill)
    return data, mask


def detect_cosmics_full(
    data: np.ndarray,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult:
    """Run astroscrappy (L.A.Cosmic) on the whole frame.

    Parameters
    ----------
    data
        The image including its sky (ADU, or electrons with ``gain=1``).
    params
        L.A.Cosmic parameters.
    inmask
        Pixels to ignore (True), e.g. saturated or bad pixels; never flagged.
    bad
        Pixels whose values are meaningless (dead, hot, NaN): replaced by the median of
        their good neighbours before detection, and never flagged.

    Returns
    -------
    CosmicResult
        The cosmic-ray mask and, with ``params.clean``, the cleaned image.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).normal(100, 3, (64, 64)).astype(np.float32)
    >>> img[30, 30] += 500
    >>> bool(detect_cosmics_full(img, CosmicParams(read_noise=3.0)).mask[30, 30])
    True
    """
    image, mask_in = _prepare_inmask(_check(data, params), inmask, bad)
    params = resolve_psf(image, params, mask_in)
    mask, cleaned = _scrappy(image, mask_in, params, params.threads)
    mask &= ~mask_in
    mask = _veto(mask, image, params)
    # astroscrappy round-trips every pixel through electrons; keep unflagged ones bit-exact
    result = np.where(mask, cleaned, image) if params.clean else None
    return CosmicResult(mask=mask, cleaned=result, mode="full", extra=_psf_extra(params))


def _veto(mask: np.ndarray, image: np.ndarray, params: CosmicParams) -> np.ndarray:
    if not params.psf_veto or params.psf_sharpness is None:
        return mask
    electrons = image * np.float32(params.gain)
    return reject_psf_like(mask, electrons, params.psf_sharpness, params.read_noise, params.veto_nsigma)


def _psf_extra(params: CosmicParams) -> dict[str, float]:
    """The PSF FWHM used by the veto or the matched-filter fine structure (0: none)."""
    used = params.fine_structure == "psf" or params.psf_veto
    return {"psf_fwhm": float(params.psf_fwhm) if used and params.psf_fwhm is not None else 0.0}


def _windows(
    shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, grow: int, cell: int = 4
) -> list[tuple[slice, slice]]:
    """Boxes covering candidate clusters (candidates within about ``cell`` px merge)."""
    grid = np.zeros((shape[0] // cell + 1, shape[1] // cell + 1), dtype=bool)
    grid[ys // cell, xs // cell] = True
    labels, _ = ndimage.label(ndimage.binary_dilation(grid), structure=np.ones((3, 3), dtype=bool))
    boxes: list[tuple[slice, slice]] = []
    for index, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        inside = labels[sl] == index
        # the candidate cells of this component, without the dilation ring
        members = inside & grid[sl]
        rows = np.nonzero(members.any(axis=1))[0]
        cols = np.nonzero(members.any(axis=0))[0]
        y0 = (sl[0].start + rows[0]) * cell - grow
        y1 = (sl[0].start + rows[-1] + 1) * cell + grow
        x0 = (sl[1].start + cols[0]) * cell - grow
        x1 = (sl[1].start + cols[-1] + 1) * cell + grow
        boxes.append((slice(max(y0, 0), min(y1, shape[0])), slice(max(x0, 0), min(x1, shape[1]))))
    return boxes


def detect_cosmics_fast(
    data: np.ndarray,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult:
    """astroscrappy's flags, computed only in windows around screened candidates.

    Parameters
    ----------
    data
        The image including its sky (ADU, or electrons with ``gain=1``).
    params
        L.A.Cosmic parameters, plus ``grow``, ``context`` and ``screen_objlim_factor``.
    inmask
        Pixels to ignore (True); never flagged.
    bad
        Pixels whose values are meaningless, filled before detection (see
        :func:`detect_cosmics_full`).

    Returns
    -------
    CosmicResult
        Mask (and cleaned image with ``params.clean``), with the number of candidates,
        windows and the fraction of the frame examined.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(1).normal(100, 3, (64, 64)).astype(np.float32)
    >>> img[30, 30] += 500
    >>> bool(detect_cosmics_fast(img, CosmicParams(read_noise=3.0)).mask[30, 30])
    True
    """
    image, mask_in = _prepare_inmask(_check(data, params), inmask, bad)
    params = resolve_psf(image, params, mask_in)
    shape = (image.shape[0], image.shape[1])
    ys, xs = screen_candidates(image, params)
    mask = np.zeros(shape, dtype=bool)
    cleaned = image.copy() if params.clean else None
    boxes = _windows(shape, ys, xs, params.grow) if len(ys) else []
    examined = 0
    ctx = params.context
    with threadpool_limits(limits=1, user_api="openmp"):  # once per frame, not per window
        for inner in boxes:
            y0, y1 = max(inner[0].start - ctx, 0), min(inner[0].stop + ctx, shape[0])
            x0, x1 = max(inner[1].start - ctx, 0), min(inner[1].stop + ctx, shape[1])
            win_mask, win_clean = _scrappy_call(image[y0:y1, x0:x1], mask_in[y0:y1, x0:x1], params)
            examined += (y1 - y0) * (x1 - x0)
            iy = slice(inner[0].start - y0, inner[0].stop - y0)
            ix = slice(inner[1].start - x0, inner[1].stop - x0)
            found = win_mask[iy, ix]
            mask[inner] |= found
            if cleaned is not None:
                cleaned[inner] = np.where(found, win_clean[iy, ix], cleaned[inner])
    mask &= ~mask_in
    mask = _veto(mask, image, params)
    if cleaned is not None:
        cleaned = np.where(mask, cleaned, image)
    return CosmicResult(
        mask=mask,
        cleaned=cleaned,
        mode="fast",
        candidates=len(ys),
        windows=len(boxes),
        examined_fraction=examined / image.size,
        extra=_psf_extra(params),
    )


def detect_cosmics(
    data: np.ndarray,
    mode: str,
    params: CosmicParams,
    inmask: np.ndarray | None = None,
    bad: np.ndarray | None = None,
) -> CosmicResult | None:
    """Dispatch on ``mode`` (``off``, ``full``, ``fast``); ``None`` for ``off``.

    Raises
    ------
    CalibrationError
        For an unknown mode.
    """
    if mode == "off":
        return None
    if mode == "full":
        return detect_cosmics_full(data, params, inmask, bad)
    if mode == "fast":
        return detect_cosmics_fast(data, params, inmask, bad)
    raise CalibrationError(
        f"unknown cosmic-ray mode {mode!r}", hint=f"set calibration.cosmic_rays to one of {MODES}"
    )


__all__ = [
    "FINE_STRUCTURES",
    "MAX_PSF_FWHM",
    "MIN_PSF_FWHM",
    "MODES",
    "PSF_MODELS",
    "CosmicParams",
    "CosmicResult",
    "PsfShape",
    "axis_sharpness",
    "detect_cosmics",
    "detect_cosmics_fast",
    "detect_cosmics_full",
    "estimate_psf",
    "fill_bad_pixels",
    "gaussian_sharpness",
    "laplacian_plus",
    "reject_psf_like",
    "resolve_psf",
    "screen_candidates",
]
