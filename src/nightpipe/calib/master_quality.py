"""Checks and quality figures of master calibration frames (pure: no I/O).

:func:`flat_problem` says why a flat cannot be used, :func:`central_region` is the central part
of a frame (where a flat's level is measured), and :func:`master_quality` and
:func:`difference_noise` give the figures recorded with each master in the library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.stats import mad_std, sigma_clipped_stats

from nightpipe.calib.badpix import local_level
from nightpipe.calib.combine import MEDIAN_EFFICIENCY, CombineResult

_FLAT_BLOCK = 8


def central_region(shape: tuple[int, int], fraction: float) -> tuple[slice, slice]:
    """The central ``fraction`` of each axis of an image of ``shape`` (at least one pixel).

    Examples
    --------
    >>> central_region((100, 200), 0.5)
    (slice(25, 75, None), slice(50, 150, None))
    """
    out = []
    for size in shape:
        keep = max(1, round(size * fraction))
        start = (size - keep) // 2
        out.append(slice(start, start + keep))
    return out[0], out[1]


def flat_problem(image: np.ndarray, block: int = _FLAT_BLOCK) -> str | None:
    """Why a (bias- and dark-corrected) flat cannot be used, or ``None`` when it can.

    A flat is refused when, in some ``block x block`` cell (the whole image when smaller), most
    finite pixels are zero or negative, or when it has no finite pixel at all.

    Examples
    --------
    >>> import numpy as np
    >>> flat_problem(np.ones((32, 32))) is None
    True
    """
    finite = np.isfinite(image)
    if not finite.any():
        return "has no finite pixel"
    ny, nx = image.shape
    b = min(block, ny, nx)
    gy, gx = ny // b, nx // b
    with np.errstate(invalid="ignore"):
        low = (finite & (image <= 0))[: gy * b, : gx * b].reshape(gy, b, gx, b).sum(axis=(1, 3))
    counts = finite[: gy * b, : gx * b].reshape(gy, b, gx, b).sum(axis=(1, 3))
    bad = np.argwhere((counts > 0) & (low * 2 > counts))
    if bad.size:
        y, x = (int(v) * b for v in bad[0])
        return (
            f"has a zero or negative region ({len(bad)} cells of {b}x{b} px mostly <= 0, the first at "
            f"x={x + 1}..{x + b}, y={y + 1}..{y + b})"
        )
    return None


def master_quality(
    kind: str, result: CombineResult, exptime: float | None, bias_included: bool
) -> dict[str, Any]:
    """Quality figures of a combined master: level, noise, rejection, dark current, illumination.

    ``level`` and ``noise`` are the median and MAD standard deviation of the master;
    ``frame_noise`` is the per-frame scatter implied by the standard-error plane (MAD-based, so
    biased low by integer ADU values with few frames: the ``pair_noise`` figure added by
    :func:`build_group`, from the difference of two frames, is the unbiased read noise for
    biases); ``dark_current`` is in ADU/s; ``illumination_min/max`` are the 1/99 percentiles
    of the smoothed flat.
    """
    data = result.data
    finite = data[np.isfinite(data)]
    quality: dict[str, Any] = dict(result.statistics())
    if finite.size == 0:
        return quality
    quality["level"] = float(np.median(finite))
    quality["noise"] = float(mad_std(finite))
    # per-frame temporal noise recovered from the standard-error plane
    good = np.isfinite(result.uncert) & (result.nused > 1)
    if good.any():
        factor = MEDIAN_EFFICIENCY if result.options.method == "median" else 1.0
        per_frame = result.uncert[good] * np.sqrt(result.nused[good]) / factor
        quality["frame_noise"] = float(np.median(per_frame))
        quality["uncert_median"] = float(np.median(result.uncert[good]))
    if kind == "dark" and exptime and not bias_included:
        quality["dark_current"] = quality["level"] / exptime
    if kind == "flat":
        smooth = local_level(np.where(np.isfinite(data), data, np.nan))
        lo, hi = np.nanpercentile(smooth, [1, 99])
        quality["illumination_min"] = float(lo)
        quality["illumination_max"] = float(hi)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in quality.items()}


def difference_noise(a: np.ndarray, b: np.ndarray) -> float:
    """Noise of one frame from two: the 5-sigma-clipped standard deviation of ``a - b`` over sqrt(2).

    Fixed patterns cancel in the difference; unlike MAD-based figures this is not biased by
    integer ADU values. For biases it is the read noise in ADU.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(0, 5, (2, 200, 200))
    >>> round(difference_noise(a, b), 1)
    5.0
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return float("nan")
    _, _, std = sigma_clipped_stats(diff, sigma=5.0, maxiters=5)
    return float(std) / float(np.sqrt(2.0))
