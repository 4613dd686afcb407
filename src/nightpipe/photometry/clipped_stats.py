"""Compiled statistics of a set of pixel values, shared by the background and the annulus sky:
selection and median in place, mean and standard deviation, sigma-clipped statistics (exact,
on sorted values, and from a histogram for large meshes)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _select(a: np.ndarray, n: int, k: int) -> float:
    """The k-th smallest of ``a[:n]`` (0-based), partially reordering ``a`` in place (quickselect)."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        # median of three as pivot
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@numba.njit(cache=True)
def _median_inplace(a: np.ndarray, n: int) -> float:
    """Median of ``a[:n]``, reordering ``a`` in place."""
    k = n // 2
    upper = _select(a, n, k)
    if n % 2 == 1:
        return upper
    lower = a[0]
    for i in range(1, k):
        lower = max(lower, a[i])
    return 0.5 * (lower + upper)


@numba.njit(cache=True)
def _mean_std(a: np.ndarray, n: int) -> tuple[float, float]:
    s1 = 0.0
    for i in range(n):
        s1 += a[i]
    mean = s1 / n
    s2 = 0.0
    for i in range(n):
        d = a[i] - mean
        s2 += d * d
    return mean, np.sqrt(s2 / n)


@numba.njit(cache=True)
def _clipped_stats_inplace(
    vals: np.ndarray, n: int, sigma: float, iters: int
) -> tuple[float, float, float, int]:
    """Sigma-clipped median, mean and std of ``vals[:n]``, reordering ``vals`` in place.

    The first clip is around the median, later ones around the mean of the kept values
    (a median costs a selection; a mean a single pass); the returned median is of the final set.
    """
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    centre = _median_inplace(vals, n)
    mean, std = _mean_std(vals, n)
    for _ in range(iters):
        lo = centre - sigma * std
        hi = centre + sigma * std
        m = 0
        s1 = 0.0
        s2 = 0.0
        for i in range(n):
            v = vals[i]
            if lo <= v <= hi:
                vals[m] = v
                m += 1
                d = v - centre
                s1 += d
                s2 += d * d
        if m < 3:
            break
        done = m == n
        n = m
        shift = s1 / n
        mean = centre + shift
        std = np.sqrt(max(s2 / n - shift * shift, 0.0))
        centre = mean
        if done:
            break
    med = _median_inplace(vals, n)
    return med, mean, std, n


@numba.njit(cache=True)
def _clipped_stats(values: np.ndarray, sigma: float, iters: int) -> tuple[float, float, float, int]:
    """Sigma-clipped median, mean and std of a 1-D array (see :func:`_clipped_stats_inplace`)."""
    vals = values.astype(np.float64)
    return _clipped_stats_inplace(vals, vals.size, sigma, iters)


NBINS = 1024
HIST_HALF_WIDTH = 6.0  # histogram range: centre +- this many (roughly clipped) sigma


@numba.njit(cache=True)
def _hist_clipped_stats(
    hist: np.ndarray, lo: float, width: float, sigma: float, iters: int
) -> tuple[float, float, float]:
    """Clipped median, mean and std from a histogram (bin ``k`` covers ``lo + k width``)."""
    nb = hist.size
    a = 0
    b = nb - 1
    med = np.nan
    mean = np.nan
    std = np.nan
    for _ in range(iters + 1):
        n = 0.0
        s1 = 0.0
        s2 = 0.0
        for k in range(a, b + 1):
            c = hist[k]
            if c:
                v = lo + (k + 0.5) * width
                n += c
                s1 += c * v
                s2 += c * v * v
        if n < 3:
            break
        mean = s1 / n
        std = np.sqrt(max(s2 / n - mean * mean, 0.0) + width * width / 12.0)
        # median, linearly interpolated inside its bin
        half = 0.5 * n
        acc = 0.0
        med = lo + (b + 1) * width
        for k in range(a, b + 1):
            c = hist[k]
            if acc + c >= half and c > 0:
                med = lo + (k + (half - acc) / c) * width
                break
            acc += c
        na = max(int(np.floor((med - sigma * std - lo) / width)), 0)
        nb2 = min(int(np.floor((med + sigma * std - lo) / width)), nb - 1)
        if na == a and nb2 == b:
            break
        a = na
        b = nb2
    return med, mean, std
