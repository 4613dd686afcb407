"""The compiled (numba) kernel that combines one band of rows of a stack, pixel by pixel.

Each pixel's values are sorted with a Batcher odd-even merge network applied across a whole row
at once (so the compare-exchanges vectorise), NaNs and masked values are pushed to the end of the
sorted list, and then rejection works on the sorted values only:

- sigma clipping with a median centre and the MAD standard deviation (astropy ``mad_std``:
  1.4826 x the median absolute deviation), clipping values strictly below
  ``median - sigma_low x std`` or strictly above ``median + sigma_high x std``, iterated up to
  ``max_iters`` times or until nothing changes; as in ``astropy.stats.sigma_clip``, the values
  finally kept are all valid values inside the last bounds (ccdproc's
  ``combine(sigma_clip=True)`` is one iteration). On sorted values the kept set is always a
  contiguous range, so each iteration is O(n) per pixel;
- min/max rejection of the ``minmax_low`` lowest and ``minmax_high`` highest values;
- no rejection.

The centre of the kept values is their median or mean. The uncertainty plane is a standard
error: for the mean ``std(kept, ddof=1) / sqrt(k)``; for the median
``sqrt(pi/2) x mad_std(kept) / sqrt(k)`` (the efficiency of the median for Gaussian noise;
ccdproc uses the same expression without the ``sqrt(pi/2)`` factor).

The options, results and the band-by-band driver are in :mod:`nightpipe.calib.combine`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np

MAD_TO_STD = 1.482602218505602
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)
_SENTINEL = np.float32(np.finfo(np.float32).max)

#: The kernel's codes for :attr:`CombineOptions.method` and :attr:`CombineOptions.clip`.
METHOD_CODES = {"median": 0, "mean": 1}
CLIP_CODES = {"none": 0, "sigma": 1, "minmax": 2}


@lru_cache(maxsize=64)
def sorting_network(n: int) -> np.ndarray:
    """Compare-exchange pairs ``(i, j)``, ``i < j``, of a Batcher network sorting ``n`` values.

    Built for the next power of two; pairs touching an index ``>= n`` are dropped, which is
    exact because the missing values behave as ``+inf`` (they never move).

    Examples
    --------
    >>> sorting_network(2).tolist()
    [[0, 1]]
    """
    pairs: list[tuple[int, int]] = []
    size = 1
    while size < n:
        size *= 2
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    out = np.array(pairs, dtype=np.int32).reshape(-1, 2)
    out.flags.writeable = False
    return out


@numba.njit(cache=True, nogil=True)
def _median_sorted(v: np.ndarray, lo: int, hi: int) -> float:
    k = hi - lo
    mid = lo + (k - 1) // 2
    if k % 2 == 1:
        return float(v[mid])
    return (float(v[mid]) + float(v[mid + 1])) / 2.0


@numba.njit(cache=True, nogil=True)
def _kth_deviation(v: np.ndarray, lo: int, hi: int, med: float, kth: int) -> tuple[float, float]:
    """The ``kth`` and ``kth + 1`` smallest (0-based) of ``|v[lo:hi] - med|`` for sorted ``v``.

    The deviations below and above the median form two sorted sequences, ``A[i] = med -
    v[left - i]`` and ``B[j] = v[right + j] - med``; the k-th smallest of their union is found
    by a binary search on how many come from ``A`` (O(log k) loads instead of a merge).
    """
    k = hi - lo
    left = lo + (k - 1) // 2
    right = left + 1
    na = left - lo + 1
    nb = hi - right
    want = kth + 1
    i_lo = max(0, want - nb)
    i_hi = min(want, na)
    while True:
        i = (i_lo + i_hi) // 2
        j = want - i
        a_prev = med - float(v[left - i + 1]) if i > 0 else -np.inf
        a_next = med - float(v[left - i]) if i < na else np.inf
        b_prev = float(v[right + j - 1]) - med if j > 0 else -np.inf
        b_next = float(v[right + j]) - med if j < nb else np.inf
        if a_prev > b_next:
            i_hi = i - 1
        elif b_prev > a_next:
            i_lo = i + 1
        else:
            return max(a_prev, b_prev), min(a_next, b_next)


@numba.njit(cache=True, nogil=True)
def _mad_sorted(v: np.ndarray, lo: int, hi: int, med: float) -> float:
    """Median absolute deviation from ``med`` of the sorted values ``v[lo:hi]``."""
    k = hi - lo
    first, following = _kth_deviation(v, lo, hi, med, (k - 1) // 2)
    if k % 2 == 1:
        return first
    return (first + following) / 2.0


@numba.njit(cache=True, nogil=True)
def _reduce_pixel(
    v: np.ndarray,
    m: int,
    method: int,
    clip: int,
    sigma_low: float,
    sigma_high: float,
    max_iters: int,
    nlow: int,
    nhigh: int,
) -> tuple[float, float, int]:
    """Centre, standard error and kept count of the ``m`` sorted valid values ``v[:m]``."""
    lo = 0
    hi = m
    # the last median/MAD computed and their range, reused when the final range is the same
    seen_lo = -1
    seen_hi = -1
    seen_med = 0.0
    seen_mad = 0.0
    if clip == 2:
        lo = min(nlow, m)
        hi = max(m - nhigh, lo)
    elif clip == 1 and m > 0:
        lower = -np.inf
        upper = np.inf
        for _ in range(max_iters):
            if hi - lo < 1:
                break
            med = _median_sorted(v, lo, hi)
            mad = _mad_sorted(v, lo, hi, med)
            seen_lo, seen_hi, seen_med, seen_mad = lo, hi, med, mad
            std = MAD_TO_STD * mad
            lower = med - sigma_low * std
            upper = med + sigma_high * std
            nlo = lo
            while nlo < hi and v[nlo] < lower:
                nlo += 1
            nhi = hi
            while nhi > nlo and v[nhi - 1] > upper:
                nhi -= 1
            if nlo == lo and nhi == hi:
                break
            lo = nlo
            hi = nhi
        # astropy's rule: the values kept are all valid values inside the last bounds
        lo = 0
        while lo < m and v[lo] < lower:
            lo += 1
        hi = m
        while hi > lo and v[hi - 1] > upper:
            hi -= 1
    k = hi - lo
    if k <= 0:
        return np.nan, np.nan, 0
    if method == 0:
        if lo == seen_lo and hi == seen_hi:
            centre = seen_med
            mad = seen_mad
        else:
            centre = _median_sorted(v, lo, hi)
            mad = _mad_sorted(v, lo, hi, centre)
        return centre, MEDIAN_EFFICIENCY * MAD_TO_STD * mad / math.sqrt(k), k
    total = 0.0
    for i in range(lo, hi):
        total += v[i]
    centre = total / k
    if k == 1:
        return centre, 0.0, 1
    ss = 0.0
    for i in range(lo, hi):
        d = v[i] - centre
        ss += d * d
    return centre, math.sqrt(ss / (k - 1)) / math.sqrt(k), k


@numba.njit(parallel=True, cache=True, nogil=True)
def _combine_band_kernel(
    band: np.ndarray,
    pairs: np.ndarray,
    method: int,
    clip: int,
    sigma_low: float,
    sigma_high: float,
    max_iters: int,
    nlow: int,
    nhigh: int,
    out: np.ndarray,
    err: np.ndarray,
    nused: np.ndarray,
    nvalid: np.ndarray,
) -> None:
    """Combine ``band`` (n, rows, cols) in place (it is used as scratch) into the output rows."""
    n, nrows, ncols = band.shape
    sentinel = np.float32(3.4028234663852886e38)
    for r in numba.prange(nrows):
        count = np.zeros(ncols, np.int32)
        for k in range(n):
            for c in range(ncols):
                x = band[k, r, c]
                if np.isfinite(x) and x < sentinel:
                    count[c] += 1
                else:
                    band[k, r, c] = sentinel
        for p in range(pairs.shape[0]):
            i = pairs[p, 0]
            j = pairs[p, 1]
            for c in range(ncols):
                a = band[i, r, c]
                b = band[j, r, c]
                lo_v = a if a < b else b
                hi_v = b if a < b else a
                band[i, r, c] = lo_v
                band[j, r, c] = hi_v
        for c in range(ncols):
            m = count[c]
            # the sorted values of this pixel, read in place: only O(log n) of them are touched
            centre, e, kept = _reduce_pixel(
                band[:, r, c], m, method, clip, sigma_low, sigma_high, max_iters, nlow, nhigh
            )
            out[r, c] = centre
            err[r, c] = e
            nused[r, c] = kept
            nvalid[r, c] = m
