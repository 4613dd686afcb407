"""Comparison stars whose flux follows the seeing are down-weighted.

A comparison star blended with a neighbour, or sitting in the wings of a bright one, gains or
loses the neighbour's light in its aperture as the seeing changes; so does one whose own wings
spill out of the aperture differently from the others'. Its flux relative to the ensemble of the
other comparisons then correlates with the FWHM. On a night whose seeing peaks during the transit
that correlation is a transit-shaped error in the ensemble, which white scatter (the Broeg weight)
does not penalise enough. Each comparison's ratio to the others is correlated with the frames'
FWHM; a correlation significant at more than ``T_LIMIT`` (Student's t of the Pearson r) multiplies
its weight by ``(T_LIMIT / t)^2``, and the comparison report says so.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Significance (Student's t) of the flux-seeing correlation above which a star is down-weighted.
T_LIMIT = 3.0


def seeing_correlation(ratios: FloatArray, seeing: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Pearson r and its Student's t of each column of ``ratios`` (F x C) against ``seeing`` (F).

    Examples
    --------
    >>> fwhm = np.linspace(3.0, 5.0, 50)
    >>> ratios = np.column_stack([1 + 0.01 * (fwhm - 4), np.cos(np.arange(50.0))])
    >>> r, t = seeing_correlation(ratios, fwhm)
    >>> [round(float(v), 2) for v in r]
    [1.0, 0.03]
    """
    n_cols = ratios.shape[1]
    r = np.zeros(n_cols)
    t = np.zeros(n_cols)
    for c in range(n_cols):
        ok = np.isfinite(ratios[:, c]) & np.isfinite(seeing)
        n = int(ok.sum())
        if n < 8 or np.std(seeing[ok]) == 0 or np.std(ratios[ok, c]) == 0:
            continue
        rc = float(np.corrcoef(ratios[ok, c], seeing[ok])[0, 1])
        r[c] = rc
        t[c] = rc * math.sqrt((n - 2) / max(1e-12, 1.0 - rc * rc))
    return r, t


def seeing_factors(ratios: FloatArray, seeing: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The weight factor of each comparison (1, or ``(T_LIMIT / |t|)^2`` above the limit), r and t."""
    r, t = seeing_correlation(ratios, seeing)
    factor = np.where(np.abs(t) > T_LIMIT, (T_LIMIT / np.maximum(np.abs(t), 1e-12)) ** 2, 1.0)
    return factor, r, t
