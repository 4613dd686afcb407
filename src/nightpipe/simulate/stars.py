"""The star field: a realistic luminosity function, a TAN projection, magnitudes to electrons."""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

# Cumulative star counts per square degree, N(<V), at about 35 deg from the Galactic plane:
# 8 deg^-2 brighter than V = 10 and a slope of 0.39 dex/mag to V = 15, 0.30 dex/mag beyond
# (Bahcall & Soneira-like counts; Allen's Astrophysical Quantities, table of star counts).
_N10 = 8.0
_SLOPE_BRIGHT = 0.39
_SLOPE_FAINT = 0.30
_M_BREAK = 15.0
_M_BRIGHT = 6.0


def cumulative_counts(mag: float | np.ndarray) -> np.ndarray:
    """Stars per square degree brighter than ``mag`` (V) at intermediate Galactic latitude."""
    m = np.asarray(mag, dtype=float)
    n_break = _N10 * 10 ** (_SLOPE_BRIGHT * (_M_BREAK - 10))
    bright = _N10 * 10 ** (_SLOPE_BRIGHT * (m - 10))
    faint = n_break * 10 ** (_SLOPE_FAINT * (m - _M_BREAK))
    return np.where(m <= _M_BREAK, bright, faint)


def latitude_factor(ra: float, dec: float) -> float:
    """Density relative to |b| = 35 deg: ``(sin 35 / sin max(|b|, 5))^0.8``, capped at 5."""
    b = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic.b.deg
    factor = (np.sin(np.radians(35.0)) / np.sin(np.radians(max(abs(b), 5.0)))) ** 0.8
    return float(min(factor, 5.0))


def draw_magnitudes(rng: np.random.Generator, n: int, mag_limit: float) -> np.ndarray:
    """Draw ``n`` magnitudes between V = 6 and ``mag_limit`` following :func:`cumulative_counts`."""
    lo, hi = float(cumulative_counts(_M_BRIGHT)), float(cumulative_counts(mag_limit))
    counts = rng.uniform(lo, hi, n)
    grid = np.linspace(_M_BRIGHT, mag_limit, 4000)
    return np.interp(counts, cumulative_counts(grid), grid)


def expected_count(area_deg2: float, mag_limit: float, density_scale: float) -> float:
    """Mean number of stars brighter than ``mag_limit`` (and fainter than V = 6) in ``area_deg2``."""
    n = cumulative_counts(mag_limit) - cumulative_counts(_M_BRIGHT)
    return float(n * area_deg2 * density_scale)


def tan_wcs(ra: float, dec: float, scale_arcsec: float, rotation_deg: float, shape: tuple[int, int]) -> WCS:
    """A TAN WCS with the pointing at the frame centre, north up and east left when unrotated.

    Parameters
    ----------
    ra, dec
        Pointing, degrees.
    scale_arcsec
        Pixel scale, arcsec per pixel.
    rotation_deg
        Position angle of the +y axis, degrees east of north.
    shape
        ``(rows, columns)`` of the image.
    """
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    s = scale_arcsec / 3600.0
    th = np.radians(rotation_deg)
    w.wcs.cd = np.array([[-s * np.cos(th), s * np.sin(th)], [s * np.sin(th), s * np.cos(th)]])
    w.wcs.radesys = "ICRS"
    w.wcs.cunit = ["deg", "deg"]
    return w


def electrons_per_second(mag: np.ndarray | float, zeropoint: float) -> np.ndarray:
    """Photo-electrons per second above the atmosphere for a magnitude and zero point."""
    return np.asarray(10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - zeropoint)))
