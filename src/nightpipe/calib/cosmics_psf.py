"""The frame's PSF in cosmic-ray detection: measuring it, and the veto that unflags star cores.

:func:`estimate_psf` measures the FWHM and the peak sharpness on the brightest isolated
unsaturated stars, :func:`resolve_psf` puts them in the parameters, and :func:`reject_psf_like`
unflags the flagged groups whose peak is no sharper than the PSF allows (why:
:mod:`nightpipe.calib.cosmics`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from nightpipe.calib.cosmics_params import MAX_PSF_FWHM, MIN_PSF_FWHM, CosmicParams

# the records keep the logger (and so the [calib.cosmics] tag) they had before the module was split
log = logging.getLogger("nightpipe.calib.cosmics")


@dataclass(frozen=True)
class PsfShape:
    """What the frame's PSF allows.

    Attributes
    ----------
    fwhm
        FWHM in pixels (median of the stars' second moments).
    sharpness
        Largest ``ln(peak / sqrt(n1 * n2))`` along a row or column (``n1``, ``n2``: the two
        direct neighbours of the brightest pixel, sky subtracted) that a star of this PSF
        shows: the 90th percentile over the measured stars plus 0.1. For a Gaussian it is
        ``1 / (2 sigma**2)`` whatever the sub-pixel position of the star.
    stars
        How many stars were measured.
    """

    fwhm: float
    sharpness: float
    stars: int


def axis_sharpness(excess: np.ndarray) -> np.ndarray:
    """``max(ln(p / sqrt(l * r)), ln(p / sqrt(u * d)))`` for rows ``[p, u, d, l, r]`` (sky subtracted).

    ``inf`` when a neighbour is not positive (nothing of the PSF there).

    Examples
    --------
    >>> import numpy as np
    >>> float(axis_sharpness(np.array([[100.0, 50, 50, 25, 100]]))[0]) == float(np.log(2))
    True
    """
    values = np.atleast_2d(np.asarray(excess, dtype=np.float64))
    peak = values[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertical = np.log(peak / np.sqrt(values[:, 1] * values[:, 2]))
        horizontal = np.log(peak / np.sqrt(values[:, 3] * values[:, 4]))
    vertical[(values[:, 1] <= 0) | (values[:, 2] <= 0)] = np.inf
    horizontal[(values[:, 3] <= 0) | (values[:, 4] <= 0)] = np.inf
    return np.maximum(vertical, horizontal)


def _cross(image: np.ndarray, y: int, x: int) -> np.ndarray:
    """Values at ``[p, up, down, left, right]`` of pixel (y, x) (not on the border)."""
    return np.asarray(image[[y, y - 1, y + 1, y, y], [x, x, x, x - 1, x + 1]], dtype=np.float64)


def estimate_psf(
    data: np.ndarray,
    saturation: float = np.inf,
    bad: np.ndarray | None = None,
    max_stars: int = 40,
    min_stars: int = 5,
    box: int = 7,
) -> PsfShape | None:
    """FWHM and peak sharpness of the PSF from the brightest isolated unsaturated stars.

    Local maxima of the frame that are at least 20 sigma above the sky (median and MAD of
    the frame), below 90 % of ``saturation``, away from the edges, with no brighter maximum
    within ``box // 2`` pixels and no ``bad`` or saturated pixel in their ``box`` x ``box``
    stamp are measured. Spikes (cosmic rays, hot pixels: a direct neighbour below a
    quarter of the peak on both sides of an axis, i.e. sharpness above ln 4) are skipped.
    ``FWHM = 2.3548 sqrt((Ixx + Iyy) / 2)`` from the sky-subtracted positive part of the
    stamp (the 7 x 7 box truncates the wings: about 5 % low); the median over the
    ``max_stars`` brightest is returned.

    Parameters
    ----------
    data
        The image (any units, sky included).
    saturation
        Level at and above which pixels are saturated (same units).
    bad
        Pixels to avoid (True), e.g. dead or hot pixels.
    max_stars, min_stars
        How many stars are measured at most, and needed at least.
    box
        Stamp size (odd), pixels.

    Returns
    -------
    PsfShape or None
        ``None`` when the frame has fewer than ``min_stars`` usable stars.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:80, :80]
    >>> img = np.full((80, 80), 100.0)
    >>> for x, y in [(15, 15), (40, 20), (65, 15), (20, 50), (50, 55), (65, 65)]:
    ...     img += 1000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.2**2))
    >>> shape = estimate_psf(img)
    >>> round(shape.fwhm, 1), round(shape.sharpness - 0.1, 2), shape.stars
    (2.7, 0.35, 6)
    """
    image = np.asarray(data, dtype=np.float64)
    usable = np.isfinite(image)
    if bad is not None:
        usable &= ~np.asarray(bad, dtype=bool)
    if usable.sum() < 100:
        return None
    sky = float(np.median(image[usable]))
    sigma = 1.4826 * float(np.median(np.abs(image[usable] - sky))) or 1.0
    filled = np.where(usable, image, sky) - sky
    usable &= image < saturation
    half = box // 2
    bright = (filled > 20 * sigma) & (image < 0.9 * saturation)
    bright[:half, :] = bright[-half:, :] = bright[:, :half] = bright[:, -half:] = False
    rows, cols = np.nonzero(bright)
    ys, xs = _local_maxima(filled, rows, cols, half)
    order = np.argsort(-filled[ys, xs])
    fwhms: list[float] = []
    sharps: list[float] = []
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    for y, x in zip(ys[order], xs[order], strict=True):
        window = (slice(y - half, y + half + 1), slice(x - half, x + half + 1))
        if not usable[window].all():
            continue
        sharp = float(axis_sharpness(_cross(filled, y, x))[0])
        if not sharp < np.log(4.0):
            continue  # a spike, not a star
        stamp = filled[window]
        weights = np.clip(stamp - np.median(stamp[[0, -1], :]), 0, None)
        total = weights.sum()
        if total <= 0:
            continue
        rows, cols = weights.sum(axis=1), weights.sum(axis=0)
        cy, cx = rows @ offsets / total, cols @ offsets / total
        var = 0.5 * (rows @ (offsets - cy) ** 2 + cols @ (offsets - cx) ** 2) / total
        fwhms.append(2.3548 * float(np.sqrt(var)))
        sharps.append(sharp)
        if len(fwhms) >= max_stars:
            break
    if len(fwhms) < min_stars:
        return None
    return PsfShape(
        fwhm=float(np.median(fwhms)), sharpness=float(np.percentile(sharps, 90)) + 0.1, stars=len(fwhms)
    )


def _local_maxima(
    image: np.ndarray, ys: np.ndarray, xs: np.ndarray, half: int, step: int = 20000
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels (ys, xs), at least ``half`` from every edge, equal to the maximum of their box.

    The same as comparing with ``ndimage.maximum_filter(image, 2 * half + 1)`` there, at the
    cost of the listed pixels only (the bright ones of a frame are a few thousand).
    """
    offsets = np.arange(-half, half + 1)
    keep = np.zeros(len(ys), dtype=bool)
    for start in range(0, len(ys), step):
        yy, xx = ys[start : start + step], xs[start : start + step]
        patch = image[yy[:, None, None] + offsets[None, :, None], xx[:, None, None] + offsets[None, None, :]]
        keep[start : start + step] = image[yy, xx] == patch.max(axis=(1, 2))
    return ys[keep], xs[keep]


def gaussian_sharpness(fwhm: float) -> float:
    """``ln(peak / sqrt(n1 * n2))`` of a point-sampled Gaussian PSF: ``1 / (2 sigma**2)``."""
    sigma = fwhm / 2.3548
    return 1.0 / (2.0 * sigma**2)


def resolve_psf(data: np.ndarray, params: CosmicParams, inmask: np.ndarray | None = None) -> CosmicParams:
    """``params`` with the PSF filled in when the veto or ``fine_structure="psf"`` needs it.

    Given ``psf_fwhm`` / ``psf_sharpness`` are kept (a missing sharpness comes from the FWHM
    as for a Gaussian); otherwise both are measured (:func:`estimate_psf`), the FWHM clipped
    to at least ``MIN_PSF_FWHM``. A frame with too few stars falls back to the classic
    median fine structure and no veto (no stars there to protect).
    """
    if not (params.fine_structure == "psf" or params.psf_veto):
        return params
    if params.psf_fwhm is not None:
        if params.psf_sharpness is not None:
            return params
        return replace(params, psf_sharpness=gaussian_sharpness(params.psf_fwhm))
    shape = estimate_psf(data, saturation=params.saturation, bad=inmask)
    if shape is None:
        log.debug("too few stars to measure the PSF: median fine structure, no PSF veto")
        return replace(params, fine_structure="median", psf_veto=False)
    fwhm = float(np.clip(shape.fwhm, MIN_PSF_FWHM, MAX_PSF_FWHM))
    sharpness = shape.sharpness if params.psf_sharpness is None else params.psf_sharpness
    log.debug("cosmic rays: PSF FWHM %.2f px, sharpness %.2f (%d stars)", fwhm, sharpness, shape.stars)
    return replace(params, psf_fwhm=fwhm, psf_sharpness=sharpness)


def reject_psf_like(
    mask: np.ndarray, electrons: np.ndarray, sharpness: float, read_noise: float, nsigma: float = 2.0
) -> np.ndarray:
    """``mask`` without the flagged groups that are the cores of stars.

    For each 8-connected group of flagged pixels, start at its brightest pixel and climb to
    the local maximum (at most 3 steps). There, with values above the local sky (median of
    the 11 x 11 box): the group is a star core, and is unflagged, when both the row and the
    column neighbours together hold light at 3 sigma and the peak is no sharper than the PSF
    allows even at the noise bounds: ``axis_sharpness <= sharpness`` with the peak lowered
    and the neighbours raised by ``nsigma`` times their Poisson plus read noise. A cosmic
    ray (a spike, or a track seen across) has no light beside it along a row or a column, or
    a far sharper peak, and stays flagged. A hit on the
    wing of a star whose core was flagged with it shows as a second local maximum of the
    group (``nsigma`` above its brightest 4-neighbour); when that one fails the same test it stays
    flagged, with its flagged 3 x 3 neighbours outside the star's peak and its cross.

    Parameters
    ----------
    mask
        Flagged pixels.
    electrons
        The image in electrons, sky included.
    sharpness
        The PSF's largest ``ln(peak / sqrt(n1 * n2))`` (:class:`PsfShape`).
    read_noise
        Read noise in electrons.
    nsigma
        Noise margin.

    Returns
    -------
    numpy.ndarray
        The new boolean mask.
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    extents = ndimage.find_objects(labels)
    ny, nx = electrons.shape
    out = mask.copy()
    vetoed = 0
    for index, extent in enumerate(extents, start=1):
        if extent is None:
            continue
        start = _group_peak(electrons, labels, index, extent)
        y, x = _climb(electrons, start[0], start[1])
        if not (1 <= y < ny - 1 and 1 <= x < nx - 1):
            continue
        sky = float(np.median(electrons[max(y - 5, 0) : y + 6, max(x - 5, 0) : x + 6]))
        if not _star_like(electrons, y, x, sky, sharpness, read_noise, nsigma):
            continue
        vetoed += 1
        member = labels[extent] == index
        out[extent][member] = False
        gy, gx = np.nonzero(member)
        gy, gx = gy + extent[0].start, gx + extent[1].start
        # hits on the star's wings that merged with its core stay flagged
        for hy, hx in _wing_spikes(electrons, gy, gx, (y, x), read_noise, nsigma):
            if not _star_like(electrons, hy, hx, sky, sharpness, read_noise, nsigma):
                # the spike and its flagged neighbours, but not the star's peak and its cross
                rows, cols = np.ogrid[hy - 1 : hy + 2, hx - 1 : hx + 2]
                off_core = np.abs(rows - y) + np.abs(cols - x) > 1
                box = (slice(hy - 1, hy + 2), slice(hx - 1, hx + 2))
                out[box] |= (labels[box] == index) & off_core
    if vetoed:
        log.debug("PSF veto: %d of %d flagged groups are star cores", vetoed, count)
    return out


def _group_peak(
    electrons: np.ndarray, labels: np.ndarray, index: int, extent: tuple[slice, slice]
) -> tuple[int, int]:
    """The brightest pixel of group ``index`` (the first in row order on a tie), from its bounding box.

    Same as ``ndimage.maximum_position`` but without sorting the whole frame for every call.
    """
    box = np.where(labels[extent] == index, electrons[extent], -np.inf)
    row, col = np.unravel_index(int(np.argmax(box)), box.shape)
    return extent[0].start + int(row), extent[1].start + int(col)


def _climb(electrons: np.ndarray, y: int, x: int, steps: int = 3) -> tuple[int, int]:
    """Move from (y, x) to the brightest pixel of its 3 x 3 box, up to ``steps`` times."""
    ny, nx = electrons.shape
    for _ in range(steps):
        if not (1 <= y < ny - 1 and 1 <= x < nx - 1):
            break
        dy, dx = np.unravel_index(int(np.argmax(electrons[y - 1 : y + 2, x - 1 : x + 2])), (3, 3))
        if dy == 1 and dx == 1:
            break
        y, x = y + int(dy) - 1, x + int(dx) - 1
    return y, x


def _star_like(
    electrons: np.ndarray, y: int, x: int, sky: float, sharpness: float, read_noise: float, nsigma: float
) -> bool:
    """Whether pixel (y, x) and its 4 neighbours look like a PSF peak (see :func:`reject_psf_like`)."""
    values = _cross(electrons, y, x)
    excess = values - sky
    sigma = np.sqrt(np.maximum(values, 0.0) + read_noise**2)
    vertical = excess[1] + excess[2] > 3.0 * np.hypot(sigma[1], sigma[2])
    horizontal = excess[3] + excess[4] > 3.0 * np.hypot(sigma[3], sigma[4])
    if not (vertical and horizontal and excess[0] > 0):
        return False  # no significant light next to the peak along a row or a column
    # the least sharp the peak can be within the noise: peak nsigma lower, neighbours nsigma higher
    bound = np.maximum(excess, 0.0) + nsigma * sigma
    bound[0] = excess[0] - nsigma * sigma[0]
    if bound[0] <= 0:
        return False
    return bool(float(axis_sharpness(bound)[0]) <= sharpness)


def _wing_spikes(
    electrons: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    peak: tuple[int, int],
    read_noise: float,
    nsigma: float,
) -> list[tuple[int, int]]:
    """Pixels (ys, xs) (not on the border, not ``peak``) ``nsigma`` above their brightest 4-neighbour."""
    ny, nx = electrons.shape
    spikes = []
    for y, x in zip(ys, xs, strict=True):
        y, x = int(y), int(x)
        if (y, x) == peak or not (1 <= y < ny - 1 and 1 <= x < nx - 1):
            continue
        values = _cross(electrons, y, x)
        if values[0] - values[1:].max() > nsigma * np.sqrt(max(values[0], 0.0) + read_noise**2):
            spikes.append((y, x))
    return spikes
