"""Times, airmass, barycentric times, seeing, sky and scintillation through the night.

Altitudes come from the pipeline's own :func:`nightpipe.frames.timing.altitudes_deg` (one
algorithm for the simulator and the reduction).
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation, get_body_barycentric
from astropy.time import Time
from astropy.utils.exceptions import AstropyWarning


def exposure_starts(start_utc: str, n: int, cadence: float) -> Time:
    """UTC start times of ``n`` exposures taken every ``cadence`` seconds from ``start_utc``."""
    start = Time(start_utc, scale="utc", format="isot")
    return start + np.arange(n) * cadence * u.s


def airmass_kasten_young(altitude: np.ndarray) -> np.ndarray:
    """Airmass from apparent altitude (degrees), Kasten & Young (1989); valid to the horizon.

    Examples
    --------
    >>> float(airmass_kasten_young(np.array([90.0]))[0])  # doctest: +ELLIPSIS
    0.9997...
    """
    h = np.clip(np.asarray(altitude, dtype=float), 0.0, 90.0)
    return np.asarray(1.0 / (np.sin(np.radians(h)) + 0.50572 * (h + 6.07995) ** -1.6364))


def bjd_tdb(times: Time, location: EarthLocation, ra: float, dec: float) -> np.ndarray:
    """Barycentric Julian dates (TDB) of ``times`` for a target at ``(ra, dec)``.

    The light travel time is the projection on the target direction of the Earth's barycentric
    position (astropy's built-in ephemeris) plus the observer's offset from the geocentre
    (at most 21 ms), the latter rotated by the mean sidereal time; this stays within a
    millisecond of astropy's ``Time.light_travel_time`` without reading IERS tables.
    """
    t = Time(times, location=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        earth = get_body_barycentric("earth", t.tdb, ephemeris="builtin").xyz.to_value(u.m)
    jd = np.atleast_1d(np.asarray(t.utc.jd, dtype=float))
    gmst = np.radians(280.46061837 + 360.98564736629 * (jd - 2451545.0))
    x, y, z = (np.asarray(c.to_value(u.m)) for c in location.geocentric)
    obs = np.stack(
        [x * np.cos(gmst) - y * np.sin(gmst), x * np.sin(gmst) + y * np.cos(gmst), np.full_like(gmst, z)]
    )
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    n = np.array([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)])
    ltt_s = (n @ (earth.reshape(3, -1) + obs)) / 299792458.0
    return np.atleast_1d(np.asarray(t.tdb.jd, dtype=float)) + ltt_s / 86400.0


def young_scintillation(
    aperture_cm: float, airmass: np.ndarray, elevation_m: float, exptime: float
) -> np.ndarray:
    """Relative scintillation noise (Young 1967): ``0.09 D^-2/3 X^1.75 exp(-h/8000) / sqrt(2 t)``.

    Parameters
    ----------
    aperture_cm
        Telescope diameter, cm.
    airmass
        Airmass of each exposure.
    elevation_m
        Observatory height, metres.
    exptime
        Exposure time, seconds.
    """
    x = np.asarray(airmass, dtype=float)
    return np.asarray(
        0.09 * aperture_cm ** (-2.0 / 3.0) * x**1.75 * np.exp(-elevation_m / 8000.0) / np.sqrt(2.0 * exptime)
    )


def smooth_noise(rng: np.random.Generator, n: int, correlation: float = 8.0) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian series correlated over about ``correlation`` samples.

    White noise convolved with a Gaussian kernel normalised to unit sum of squares, so that
    every sample has unit variance whatever ``n`` is.
    """
    if n == 0:
        return np.zeros(0)
    half = int(3 * correlation)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / correlation) ** 2)
    k /= np.sqrt(np.sum(k**2))
    white = rng.standard_normal(n + 2 * half)
    return np.asarray(np.convolve(white, k, mode="valid")[:n])


def seeing_series(
    rng: np.random.Generator, airmass: np.ndarray, fwhm_zenith: float, variation: float
) -> np.ndarray:
    """FWHM (arcsec) of each exposure: ``fwhm * X^0.6`` modulated by slow seeing changes."""
    slow = smooth_noise(rng, airmass.size)
    return np.asarray(fwhm_zenith * np.asarray(airmass) ** 0.6 * np.exp(variation * slow))


def sky_series(
    airmass: np.ndarray, brightness: float, trend: float, zeropoint: float, pixel_area_arcsec2: float
) -> np.ndarray:
    """Sky background of each exposure, electrons per pixel per second.

    The zenith sky of ``brightness`` mag/arcsec^2 brightens with airmass (van Rhijn-like,
    ``X^0.7``) and changes linearly by the fraction ``trend`` from first to last exposure.
    """
    x = np.asarray(airmass, dtype=float)
    base = 10 ** (-0.4 * (brightness - zeropoint)) * pixel_area_arcsec2
    ramp = 1.0 + trend * np.linspace(0.0, 1.0, x.size)
    return np.asarray(base * x**0.7 * ramp)
