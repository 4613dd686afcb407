"""Two-body positions of many minor planets at once: heliocentric orbits propagated with Kepler's
equation, seen from the Earth (ERFA's ``epv00``, no ephemeris file) or from a site on it, with the
light time, as astrometric ICRS RA/Dec (the frame of a Gaia-referenced plate solution).

Two-body ignores the planets' pull: a main-belt orbit drifts by a few arcseconds in a few months
from its epoch (MPCORB's epochs are at most 100 days from any date it is published for).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import erfa
import numpy as np
from astropy.time import Time

from nightpipe.frames.barycentric import site_gcrs_m
from nightpipe.movers.mpcorb import Orbits

C_AU_DAY = 173.1446326846693  # the speed of light, AU per day
AU_M = 149597870700.0
OBLIQUITY_J2000 = np.deg2rad(84381.448 / 3600.0)  # the ecliptic of J2000 of the MPC's elements


@dataclass(frozen=True)
class Site:
    """A place on the Earth (geodetic, WGS84)."""

    latitude_deg: float
    longitude_deg: float  # east
    height_m: float


def _times(jd_utc: np.ndarray) -> Time:
    """The UTC instants as an astropy ``Time`` (its TT and two-part dates: one UTC-to-TT path)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)  # "dubious year" for far dates
        return Time(np.atleast_1d(np.asarray(jd_utc, float)), format="jd", scale="utc")


def eccentric_anomaly(mean: np.ndarray, e: np.ndarray) -> np.ndarray:
    """E of Kepler's equation ``M = E - e sin E`` (radians, elliptic orbits), by Newton's method."""
    mean = np.remainder(mean + np.pi, 2 * np.pi) - np.pi
    big = np.asarray(np.broadcast_to(e, mean.shape))
    ecc = np.where(big > 0.8, np.pi * np.sign(mean), mean + big * np.sin(mean))
    for _ in range(50):
        step = (ecc - big * np.sin(ecc) - mean) / (1.0 - big * np.cos(ecc))
        ecc = ecc - step
        if np.all(np.abs(step) < 1e-13):
            break
    return np.asarray(ecc)


def heliocentric(orbits: Orbits, jd_tt: np.ndarray) -> np.ndarray:
    """Heliocentric equatorial (ICRS axes) positions, AU, shape (3, orbits, times)."""
    t = np.atleast_1d(np.asarray(jd_tt, float))
    shape = (len(orbits), t.size) if t.ndim == 1 else t.shape
    times = np.broadcast_to(t, shape) if t.ndim == 1 else t
    # the published mean motion (it agrees with k / a^1.5 to 1e-8 deg/day)
    n = np.deg2rad(orbits.n)
    mean = np.deg2rad(orbits.M)[:, None] + n[:, None] * (times - orbits.epoch_tt[:, None])
    e = orbits.e[:, None]
    ecc = eccentric_anomaly(mean, np.broadcast_to(e, shape))
    a = orbits.a[:, None]
    x = a * (np.cos(ecc) - e)
    y = a * np.sqrt(1.0 - e * e) * np.sin(ecc)
    w, node, inc = (np.deg2rad(v)[:, None] for v in (orbits.peri, orbits.node, orbits.incl))
    cw, sw, cn, sn, ci, si = np.cos(w), np.sin(w), np.cos(node), np.sin(node), np.cos(inc), np.sin(inc)
    xe = (cn * cw - sn * sw * ci) * x + (-cn * sw - sn * cw * ci) * y
    ye = (sn * cw + cn * sw * ci) * x + (-sn * sw + cn * cw * ci) * y
    ze = (sw * si) * x + (cw * si) * y
    ce, se = np.cos(OBLIQUITY_J2000), np.sin(OBLIQUITY_J2000)
    return np.stack([xe, ce * ye - se * ze, se * ye + ce * ze])


def observer(jd_utc: np.ndarray, site: Site | None) -> np.ndarray:
    """Heliocentric ICRS position of the geocentre or of a site, AU, shape (3, times)."""
    times = _times(jd_utc)
    tt = times.tt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        pvh, _ = erfa.epv00(tt.jd1, tt.jd2)
    earth = np.asarray(pvh["p"], float).reshape(-1, 3).T
    if site is None:
        return earth
    gcrs = site_gcrs_m(
        (tt.jd1, tt.jd2), (times.jd1, times.jd2), site.latitude_deg, site.longitude_deg, site.height_m
    )
    return np.asarray(earth + gcrs.T / AU_M)


def astrometric(
    orbits: Orbits, jd_utc: np.ndarray, site: Site | None, *, light_time: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Astrometric RA, Dec (degrees) and distance (AU), each of shape (orbits, times)."""
    jd_utc = np.atleast_1d(np.asarray(jd_utc, float))
    tt = np.asarray(_times(jd_utc).tt.jd, float)
    where = observer(jd_utc, site)[:, None, :]
    target = heliocentric(orbits, tt)
    for _ in range(2 if light_time else 0):
        tau = np.sqrt(((target - where) ** 2).sum(axis=0)) / C_AU_DAY
        target = heliocentric(orbits, tt[None, :] - tau)
    rel = target - where
    distance = np.sqrt((rel**2).sum(axis=0))
    ra = np.rad2deg(np.arctan2(rel[1], rel[0])) % 360.0
    dec = np.rad2deg(np.arcsin(rel[2] / distance))
    return ra, dec, distance
