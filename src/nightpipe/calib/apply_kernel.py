"""The compiled (numba) passes over a frame's pixels behind :mod:`nightpipe.calib.apply`.

:func:`calibrate_pixels` computes, in one float32 pass, the calibrated value, its standard
deviation and the uint16 mask of :class:`nightpipe.frames.flags.PixelFlag` bits (the model is in
:mod:`nightpipe.calib.apply`'s docstring); :func:`flag_counts` counts the mask's bits.
"""

from __future__ import annotations

import numba
import numpy as np

from nightpipe.frames.flags import PixelFlag

# flag bits as constants the compiled kernel can inline
_SATURATED = np.uint16(PixelFlag.SATURATED)
_NONLINEAR = np.uint16(PixelFlag.NONLINEAR)
_NO_DATA = np.uint16(PixelFlag.NO_DATA)
_LOW_FLAT = np.uint16(PixelFlag.LOW_FLAT)


@numba.njit(parallel=True, cache=True, fastmath=False)
def calibrate_pixels(
    raw: np.ndarray,
    bias: np.ndarray,
    bias_err: np.ndarray,
    dark: np.ndarray,
    dark_err: np.ndarray,
    flat: np.ndarray,
    flat_err: np.ndarray,
    bad: np.ndarray,
    has: np.ndarray,
    cb: float,
    cd: float,
    inv_gain: float,
    rn2: float,
    saturation: float,
    nonlinear: float,
    min_flat: float,
    out_scale: float,
    sci: np.ndarray,
    unc: np.ndarray,
    mask: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """One fused pass over the pixels: science value, its standard deviation and flags, in place."""
    nrow, ncol = raw.shape
    has_bias, has_bias_err, has_dark, has_dark_err = has[0], has[1], has[2], has[3]
    has_flat, has_flat_err, has_bad = has[4], has[5], has[6]
    nan = np.float32(np.nan)
    for i in numba.prange(nrow):
        for j in range(ncol):
            r = raw[i, j]
            m = np.uint16(0)
            if has_bad:
                m |= bad[i, j]
            if not np.isfinite(r):
                sci[i, j] = nan
                unc[i, j] = nan
                mask[i, j] = m | _NO_DATA
                continue
            if r >= saturation:
                m |= _SATURATED
            elif r >= nonlinear:
                m |= _NONLINEAR
            pre = np.float32(r)
            var = np.float32(rn2)
            if has_bias:
                pre -= np.float32(cb) * bias[i, j]
                if has_bias_err:
                    e = np.float32(cb) * bias_err[i, j]
                    var += e * e
            if has_dark:
                pre -= np.float32(cd) * dark[i, j]
                if has_dark_err:
                    e = np.float32(cd) * dark_err[i, j]
                    var += e * e
            if pre > 0:
                var += pre * np.float32(inv_gain)
            value = pre
            if has_flat:
                f = flat[i, j]
                if not (f >= min_flat):  # also catches NaN
                    sci[i, j] = nan
                    unc[i, j] = nan
                    mask[i, j] = m | _LOW_FLAT
                    continue
                value = pre / f
                var = var / (f * f)
                if has_flat_err:
                    rel = flat_err[i, j] / f
                    var += value * value * rel * rel
            if not (np.isfinite(value) and np.isfinite(var)):
                m |= _NO_DATA
            sci[i, j] = value * np.float32(out_scale)
            unc[i, j] = np.sqrt(var) * np.float32(out_scale)
            mask[i, j] = m


def flag_counts(mask: np.ndarray) -> dict[str, int]:
    """Number of pixels carrying each :class:`PixelFlag` bit that occurs in ``mask``."""
    values = np.ascontiguousarray(mask, dtype=np.uint16).ravel()
    if values.ctypes.data % 8:  # a view at an odd offset: read as 64-bit words from a copy
        values = values.copy()
    head = values.size - values.size % 4
    bits = _bit_counts(values[:head].view(np.uint64), values[head:])
    counts: dict[str, int] = {}
    for flag in PixelFlag:
        n = int(bits[int(flag.value).bit_length() - 1])
        if n and flag.name:
            counts[flag.name] = n
    return counts


@numba.njit(cache=True)
def _bit_counts(words: np.ndarray, tail: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Bit counts of uint16 values read four at a time (most words of a mask are zero)."""
    counts = np.zeros(16, dtype=np.int64)
    for w in words:
        if w:
            for k in range(4):
                v = (w >> np.uint64(16 * k)) & np.uint64(0xFFFF)
                if v:
                    for b in range(16):
                        counts[b] += (v >> np.uint64(b)) & np.uint64(1)
    for v in tail:
        if v:
            for b in range(16):
                counts[b] += (v >> b) & 1
    return counts
