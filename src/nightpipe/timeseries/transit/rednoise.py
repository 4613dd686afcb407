"""The red-noise factor of a fit's residuals: the time-averaging ``beta`` of Winn et al. (2008).

Residuals binned over ``m`` minutes should scatter by ``sigma_1 / sqrt(n) * sqrt(M / (M - 1))``
if the noise were white (``n`` points a bin, ``M`` bins). Correlated noise (seeing, guiding, a
comparison star's trend left in the light curve) makes the binned scatter larger; the ratio,
averaged over bin widths of the order of the ingress duration, is ``beta``. The fit's errors
are multiplied by ``max(1, beta)`` so that the reported uncertainties include the red noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from nightpipe.timeseries.lightcurve import bin_arrays

FloatArray = NDArray[np.float64]

#: Fewest bins of a width for its ratio to count.
MIN_BINS = 4


def beta_ratios(time: FloatArray, residuals: FloatArray, minutes: Sequence[float]) -> dict[float, float]:
    """Binned scatter over its white-noise expectation for each bin width with enough full bins.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> t = np.arange(400) / 1440.0  # one point a minute
    >>> white = rng.normal(0, 1e-3, 400)
    >>> r = beta_ratios(t, white, [10.0, 20.0])
    >>> bool(all(0.6 < v < 1.4 for v in r.values()))
    True
    """
    out: dict[float, float] = {}
    if residuals.size < 2 * MIN_BINS:
        return out
    sigma1 = float(np.std(residuals))
    if not sigma1 > 0:
        return out
    for width in minutes:
        _, binned, _, counts, _ = bin_arrays(time, residuals, np.ones_like(residuals), width)
        full = counts >= max(2, int(0.5 * np.median(counts))) if counts.size else counts.astype(bool)
        m = int(full.sum())
        if m < MIN_BINS or float(np.mean(counts[full])) < 2:
            continue
        expected = sigma1 / math.sqrt(float(np.mean(counts[full]))) * math.sqrt(m / (m - 1))
        out[float(width)] = float(np.sqrt(np.mean(binned[full] ** 2))) / expected
    return out


def red_noise_beta(time: FloatArray, residuals: FloatArray, minutes: Sequence[float]) -> float:
    """``max(1, mean ratio)`` over the bin widths (1 when no width has enough bins)."""
    ratios = beta_ratios(time, residuals, minutes)
    if not ratios:
        return 1.0
    return max(1.0, float(np.mean(list(ratios.values()))))
