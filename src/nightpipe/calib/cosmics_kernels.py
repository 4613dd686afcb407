"""The compiled (numba) kernels of the fast mode's screen (:mod:`nightpipe.calib.cosmics_screen`).

Each does in one pass, in the same precision and order, what an array version there does, so
the values are equal bit for bit (``tests/test_cosmics.py`` compares them). ``cache=True``
keeps the compiled code between runs.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np


@numba.njit(cache=True)
def _positive(value: Any, zero: Any) -> Any:  # pragma: no cover - compiled
    """``np.maximum(value, zero)``, ``zero`` of the value's type (no float64 promotion); NaN stays NaN."""
    return zero if value < zero else value


@numba.njit(cache=True)
def laplacian_plus_kernel(image: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``L+`` of a 2-D float32 or float64 image (:func:`~nightpipe.calib.cosmics_screen.laplacian_plus`)."""
    ny, nx = image.shape
    out = np.empty_like(image)
    two = image.dtype.type(2.0)
    quarter = image.dtype.type(0.25)
    zero = image.dtype.type(0.0)
    for i in range(ny):
        iu, idn = max(i - 1, 0), min(i + 1, ny - 1)
        for j in range(nx):
            jl, jr = max(j - 1, 0), min(j + 1, nx - 1)
            v2 = two * image[i, j]
            left, right, up, down = image[i, jl], image[i, jr], image[iu, j], image[idn, j]
            acc = _positive(v2 - left - up, zero)
            acc += _positive(v2 - right - up, zero)
            acc += _positive(v2 - left - down, zero)
            acc += _positive(v2 - right - down, zero)
            out[i, j] = acc * quarter
    return out


@numba.njit(cache=True)
def _median_odd(buf: np.ndarray, n: int) -> float:  # pragma: no cover - compiled
    """Median of ``buf[:n]`` (``n`` odd), sorting it in place; NaN when one value is NaN (as np.median)."""
    for a in range(n):
        if buf[a] != buf[a]:
            return buf[a]
    for a in range(1, n):
        value = buf[a]
        b = a - 1
        while b >= 0 and buf[b] > value:
            buf[b + 1] = buf[b]
            b -= 1
        buf[b + 1] = value
    return buf[n // 2]


@numba.njit(cache=True)
def first_pass_kernel(
    padded: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    rn2: np.float32,
    sp_out: np.ndarray,
    ratio_out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """First-pass ``S'`` and ``S'/F`` at image pixels (ys, xs) into ``sp_out`` and ``ratio_out``.

    ``padded`` is the image with its edges repeated 4 pixels out
    (:func:`~nightpipe.calib.cosmics_screen._lacosmic_first_pass_at`).
    """
    f32 = np.float32
    buf = np.empty(25, f32)
    rows = np.empty((9, 5), f32)
    noise = np.empty((5, 5), f32)
    lap = np.empty((7, 7), f32)
    med3 = np.empty((7, 7), f32)
    med_rows = np.empty(7, f32)
    two, quarter, tiny, least, zero = f32(2.0), f32(0.25), f32(1e-5), f32(0.01), f32(0.0)
    for n in range(len(ys)):
        y0, x0 = ys[n], xs[n]  # patch[r, c] = padded[y0 + r, x0 + c], 9 x 9, the pixel at (4, 4)
        for r in range(9):  # separable 5x5 median: rows first
            for c in range(5):
                for k in range(5):
                    buf[k] = padded[y0 + r, x0 + c + k]
                rows[r, c] = _median_odd(buf, 5)
        for r in range(5):
            for c in range(5):
                for k in range(5):
                    buf[k] = rows[r + k, c]
                m = _positive(_median_odd(buf, 5), tiny)  # np.maximum(m, 1e-5)
                noise[r, c] = f32(np.sqrt(np.float64(m + rn2)))
        for r in range(7):
            for c in range(7):
                v2 = two * padded[y0 + r + 1, x0 + c + 1]
                left, right = padded[y0 + r + 1, x0 + c], padded[y0 + r + 1, x0 + c + 2]
                up, down = padded[y0 + r, x0 + c + 1], padded[y0 + r + 2, x0 + c + 1]
                acc = _positive(v2 - left - up, zero)
                acc += _positive(v2 - right - up, zero)
                acc += _positive(v2 - left - down, zero)
                acc += _positive(v2 - right - down, zero)
                lap[r, c] = acc * quarter
        for r in range(5):
            for c in range(5):
                buf[5 * r + c] = lap[r + 1, c + 1] / (two * noise[r, c])
        centre = buf[12]
        sp = centre - _median_odd(buf, 25)
        for r in range(7):
            for c in range(7):
                for a in range(3):
                    for b in range(3):
                        buf[3 * a + b] = padded[y0 + r + a, x0 + c + b]
                med3[r, c] = _median_odd(buf, 9)
        for r in range(7):
            for c in range(7):
                buf[c] = med3[r, c]
            med_rows[r] = _median_odd(buf, 7)
        for r in range(7):
            buf[r] = med_rows[r]
        med7 = _median_odd(buf, 7)
        fine = _positive((med3[3, 3] - med7) / noise[2, 2], least)  # np.maximum(fine, 0.01)
        sp_out[n] = sp
        ratio_out[n] = sp / fine
