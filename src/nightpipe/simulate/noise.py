"""The expected photometric noise of a star: the CCD equation plus scintillation."""

from __future__ import annotations

import numpy as np


def ccd_noise(
    star_e: np.ndarray,
    npix: np.ndarray | float,
    sky_e: np.ndarray,
    dark_e: np.ndarray | float,
    read_noise: float,
    gain: float,
) -> np.ndarray:
    """Relative noise of an aperture sum from the CCD equation (Merline & Howell 1995).

    ``sigma / F = sqrt(F + npix (S + D + R^2 + (0.289 g)^2)) / F`` with every term in electrons
    per exposure (``S``, ``D`` per pixel) and ``g`` the gain (digitisation noise).

    Examples
    --------
    >>> round(float(ccd_noise(np.array([1e4]), 10, np.array([100.0]), 0.0, 0.0, 1.0)[0]), 5)
    0.01414
    """
    f = np.asarray(star_e, dtype=float)
    var = f + np.asarray(npix) * (
        np.asarray(sky_e) + np.asarray(dark_e) + read_noise**2 + (0.289 * gain) ** 2
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.sqrt(var) / f)


def total_noise(ccd: np.ndarray, scintillation: np.ndarray) -> np.ndarray:
    """CCD and scintillation noise added in quadrature."""
    return np.asarray(np.hypot(ccd, scintillation))
