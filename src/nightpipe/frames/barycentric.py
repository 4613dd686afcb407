"""The astropy part of frame times, on whole arrays at once: barycentric (BJD_TDB) times of
mid-exposures and of JD_UTC values, and the altitude of a target over the night."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

import numpy as np


def barycentric_times(
    mid_utc: Sequence[datetime],
    ra_deg: Sequence[float | None],
    dec_deg: Sequence[float | None],
    lat_deg: Sequence[float],
    lon_deg: Sequence[float],
    height_m: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """JD_UTC and BJD_TDB of many frames at once, with astropy and its ERFA library.

    BJD_TDB = JD(TDB) of ``mid_utc`` + (r_obs . n) / c, where n is the unit vector to
    (``ra``, ``dec``) and r_obs the observatory's barycentric position: the Earth's from
    ERFA ``epv00`` (astropy's ``builtin`` ephemeris) plus the site's geocentric position
    (WGS84, ERFA ``gd2gc``) rotated to GCRS with the IAU 2000B matrix. This is what
    ``astropy.time.Time.light_travel_time`` computes, but polar motion and UT1-UTC are
    neglected (below 2 microseconds), so the IERS tables, their 5 s load and their
    downloads are not needed. Frames without coordinates get NaN.

    Returns
    -------
    jd_utc, bjd_tdb
        Arrays of the same length as ``mid_utc``.
    """
    from astropy.time import Time

    n = len(mid_utc)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    jd = np.asarray(Time(list(mid_utc), scale="utc").jd, dtype=np.float64)
    ra = np.array([np.nan if v is None else v for v in ra_deg], dtype=float)
    dec = np.array([np.nan if v is None else v for v in dec_deg], dtype=float)
    bjd = bjd_tdb_of_jd_utc(jd, ra, dec, lat_deg, lon_deg, height_m)
    return jd, bjd


def bjd_tdb_of_jd_utc(
    jd_utc: np.ndarray,
    ra_deg: np.ndarray | float,
    dec_deg: np.ndarray | float,
    lat_deg: Sequence[float] | np.ndarray | float,
    lon_deg: Sequence[float] | np.ndarray | float,
    height_m: Sequence[float] | np.ndarray | float,
) -> np.ndarray:
    """BJD_TDB of JD_UTC times for (``ra``, ``dec``) seen from a site (scalars or one per time).

    The computation of :func:`barycentric_times` (ERFA, no IERS tables, within 2 microseconds
    of astropy's ``light_travel_time``); non-finite coordinates give NaN.
    """
    import erfa
    from astropy.time import Time

    jd = np.atleast_1d(np.asarray(jd_utc, dtype=np.float64))
    n = jd.size
    if n == 0:
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" for far dates
        times = Time(jd, format="jd", scale="utc")
        tt, tdb = times.tt, times.tdb
        ra = np.radians(np.broadcast_to(np.asarray(ra_deg, float), (n,)))
        dec = np.radians(np.broadcast_to(np.asarray(dec_deg, float), (n,)))
        toward = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)
        _, earth = erfa.epv00(tdb.jd1, tdb.jd2)
        earth_m = np.asarray(earth["p"]) * erfa.DAU
        site_gcrs = site_gcrs_m((tt.jd1, tt.jd2), (times.jd1, times.jd2), lat_deg, lon_deg, height_m)
    delay_s = np.einsum("ni,ni->n", earth_m + site_gcrs, toward) / erfa.CMPS
    bjd = (tdb.jd1 + tdb.jd2) + delay_s / 86400.0
    return np.asarray(np.where(np.isfinite(delay_s), bjd, np.nan))


def site_gcrs_m(
    jd_tt: tuple[np.ndarray, np.ndarray],
    jd_utc: tuple[np.ndarray, np.ndarray],
    lat_deg: Sequence[float] | np.ndarray | float,
    lon_deg: Sequence[float] | np.ndarray | float,
    height_m: Sequence[float] | np.ndarray | float,
) -> np.ndarray:
    """Geocentric GCRS position of a site at each time, metres, shape (times, 3).

    The site's WGS84 position (ERFA ``gd2gc``) rotated by the IAU 2000B celestial-to-terrestrial
    matrix (``c2t00b``), with UT1 taken as UTC and no polar motion (a few metres, below 0.1 ms of
    light time and 0.1 arcsec of a near-Earth object's parallax). ``jd_tt`` and ``jd_utc`` are
    two-part Julian dates (``jd1``, ``jd2``) of the same instants; the site may be one or one per time.
    """
    import erfa

    tt1, tt2 = (np.atleast_1d(np.asarray(v, np.float64)) for v in jd_tt)
    utc1, utc2 = (np.atleast_1d(np.asarray(v, np.float64)) for v in jd_utc)
    n = tt1.size
    lon = np.radians(np.broadcast_to(np.asarray(lon_deg, float), (n,)))
    lat = np.radians(np.broadcast_to(np.asarray(lat_deg, float), (n,)))
    height = np.broadcast_to(np.asarray(height_m, float), (n,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        itrs = erfa.gd2gc(1, lon, lat, height).reshape(n, 3)  # WGS84
        to_terrestrial = erfa.c2t00b(tt1, tt2, utc1, utc2, 0.0, 0.0)
    return np.asarray(np.einsum("nji,nj->ni", to_terrestrial, itrs))


def altitudes_deg(
    jd_utc: np.ndarray,
    ra_deg: np.ndarray | float,
    dec_deg: np.ndarray | float,
    lat_deg: float,
    lon_deg: float,
    height_m: float,
) -> np.ndarray:
    """Geometric altitude (no refraction) of ICRS (``ra``, ``dec``) at JD_UTC times, degrees.

    ERFA's ``atco13`` with UT1 = UTC and no polar motion: within 0.001 degree of astropy's
    ``AltAz`` and 80x faster on first use, because no IERS table is loaded.
    """
    import erfa
    from astropy.time import Time

    jd = np.atleast_1d(np.asarray(jd_utc, dtype=np.float64))
    if jd.size == 0:
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        times = Time(jd, format="jd", scale="utc")
        zenith = erfa.atco13(
            np.radians(np.asarray(ra_deg, float)),
            np.radians(np.asarray(dec_deg, float)),
            0.0,
            0.0,
            0.0,
            0.0,  # proper motion, parallax, radial velocity
            times.jd1,
            times.jd2,
            0.0,  # UT1 - UTC
            np.radians(lon_deg),
            np.radians(lat_deg),
            height_m,
            0.0,
            0.0,  # polar motion
            0.0,
            0.0,
            0.0,
            0.0,  # pressure 0: no refraction
        )[1]
    return np.asarray(90.0 - np.degrees(zenith))
