"""Bad-pixel masks: hot pixels from a master dark, dead and low-response pixels from a flat.

Pure functions on arrays; the result is a ``uint16`` plane of
:class:`nightpipe.frames.flags.PixelFlag` bits (``HOT``, ``DEAD``, ``LOW_FLAT``, ``NO_DATA``).
"""

from __future__ import annotations

import numpy as np
from astropy.stats import mad_std

from nightpipe.frames.flags import PixelFlag

#: A flat pixel responding less than this fraction of its neighbourhood is ``LOW_FLAT``.
LOW_RESPONSE = 0.5
_BLOCK = 32


def hot_pixels(dark: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Pixels of a master dark above ``median + sigma x mad_std`` (boolean array).

    Examples
    --------
    >>> import numpy as np
    >>> d = np.random.default_rng(0).normal(5, 1, (50, 50)); d[3, 4] = 100
    >>> np.argwhere(hot_pixels(d)).tolist()
    [[3, 4]]
    """
    values = np.asarray(dark, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, bool)
    level = float(np.median(finite))
    spread = float(mad_std(finite))
    if spread == 0.0:
        spread = float(np.std(finite)) or 1e-12
    with np.errstate(invalid="ignore"):
        return np.asarray(values > level + sigma * spread)


def local_level(image: np.ndarray, block: int = _BLOCK) -> np.ndarray:
    """A smooth local level: the median of ``block x block`` cells, expanded to the image shape."""
    ny, nx = image.shape
    gy, gx = max(1, ny // block), max(1, nx // block)
    cut = (
        np.asarray(image[: gy * block, : gx * block], dtype=np.float64)
        if ny >= block and nx >= block
        else None
    )
    if cut is None:
        return np.full(image.shape, np.nanmedian(image))
    with np.errstate(invalid="ignore"):
        cells = np.nanmedian(
            cut.reshape(gy, block, gx, block).transpose(0, 2, 1, 3).reshape(gy, gx, -1), axis=2
        )
    iy = np.minimum(np.arange(ny) // block, gy - 1)
    ix = np.minimum(np.arange(nx) // block, gx - 1)
    return np.asarray(cells[np.ix_(iy, ix)])


def dead_pixels(flat: np.ndarray, min_level: float = 0.05) -> np.ndarray:
    """Pixels of a normalised flat that do not respond: below ``min_level`` or not finite."""
    values = np.asarray(flat)
    with np.errstate(invalid="ignore"):
        return np.asarray(~np.isfinite(values) | (values < min_level))


def low_response_pixels(flat: np.ndarray, fraction: float = LOW_RESPONSE) -> np.ndarray:
    """Pixels of a flat below ``fraction`` of their neighbourhood's median level."""
    values = np.asarray(flat, dtype=np.float64)
    level = local_level(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.isfinite(values) & (values < fraction * level))


def bad_pixel_mask(
    shape: tuple[int, int],
    *,
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    hot_sigma: float = 8.0,
    min_flat_level: float = 0.05,
) -> np.ndarray:
    """The ``uint16`` flag plane from a master dark and/or a normalised master flat.

    ``HOT`` from the dark (:func:`hot_pixels`), ``DEAD`` (:func:`dead_pixels`) and ``LOW_FLAT``
    (:func:`low_response_pixels`) from the flat.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.ones((64, 64)); flat[1, 1] = 0.0; flat[2, 2] = 0.3
    >>> m = bad_pixel_mask((64, 64), flat=flat)
    >>> int(m[1, 1]), int(m[2, 2]), int(m[0, 0])
    (4, 128, 0)
    """
    mask = np.zeros(shape, np.uint16)
    if dark is not None:
        mask[hot_pixels(dark, hot_sigma)] |= np.uint16(PixelFlag.HOT)
    if flat is not None:
        dead = dead_pixels(flat, min_flat_level)
        mask[dead] |= np.uint16(PixelFlag.DEAD)
        mask[low_response_pixels(flat) & ~dead] |= np.uint16(PixelFlag.LOW_FLAT)
    return mask
