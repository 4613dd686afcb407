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
from nightpipe.movers.comets import Comets
from nightpipe.movers.mpcorb import Orbits

C_AU_DAY = 173.1446326846693  # the speed of light, AU per day
AU_M = 149597870700.0
GAUSS_K = 0.01720209895  # AU^1.5 / day: the Sun's sqrt(GM) in the units of the MPC's elements
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


def _to_equatorial(
    x: np.ndarray, y: np.ndarray, peri: np.ndarray, node: np.ndarray, incl: np.ndarray
) -> np.ndarray:
    """Perifocal (x toward the perihelion, y along the motion) to ICRS axes, shape (3, ...)."""
    w, node, inc = (np.deg2rad(v)[:, None] for v in (peri, node, incl))
    cw, sw, cn, sn, ci, si = np.cos(w), np.sin(w), np.cos(node), np.sin(node), np.cos(inc), np.sin(inc)
    xe = (cn * cw - sn * sw * ci) * x + (-cn * sw - sn * cw * ci) * y
    ye = (sn * cw + cn * sw * ci) * x + (-sn * sw + cn * cw * ci) * y
    ze = (sw * si) * x + (cw * si) * y
    ce, se = np.cos(OBLIQUITY_J2000), np.sin(OBLIQUITY_J2000)
    return np.stack([xe, ce * ye - se * ze, se * ye + ce * ze])


def _times_for(count: int, jd_tt: np.ndarray) -> np.ndarray:
    """Times as (bodies, times): one row of times for every body, or one row per body as given."""
    t = np.atleast_1d(np.asarray(jd_tt, float))
    return np.broadcast_to(t, (count, t.size)) if t.ndim == 1 else t


def heliocentric(orbits: Orbits | Comets, jd_tt: np.ndarray) -> np.ndarray:
    """Heliocentric equatorial (ICRS axes) positions, AU, shape (3, bodies, times): minor planets by
    Kepler's equation from their mean anomaly, comets by universal variables from their perihelion."""
    if isinstance(orbits, Comets):
        return _comet_positions(orbits, jd_tt)
    times = _times_for(len(orbits), jd_tt)
    # the published mean motion (it agrees with k / a^1.5 to 1e-8 deg/day)
    n = np.deg2rad(orbits.n)
    mean = np.deg2rad(orbits.M)[:, None] + n[:, None] * (times - orbits.epoch_tt[:, None])
    e = orbits.e[:, None]
    ecc = eccentric_anomaly(mean, np.broadcast_to(e, times.shape))
    a = orbits.a[:, None]
    x = a * (np.cos(ecc) - e)
    y = a * np.sqrt(1.0 - e * e) * np.sin(ecc)
    return _to_equatorial(x, y, orbits.peri, orbits.node, orbits.incl)


def stumpff(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stumpff's C(z) and S(z) (series where |z| < 1, where the closed forms lose digits)."""
    z = np.asarray(z, float)
    small = np.abs(z) < 1.0
    zs = np.where(small, z, 0.0)
    c = np.zeros_like(z)
    s = np.zeros_like(z)
    term_c, term_s = np.full_like(z, 0.5), np.full_like(z, 1.0 / 6.0)
    for k in range(10):  # (-z)^k / (2k + 2)! and (-z)^k / (2k + 3)!
        c, s = c + term_c, s + term_s
        term_c = term_c * -zs / ((2 * k + 3) * (2 * k + 4))
        term_s = term_s * -zs / ((2 * k + 4) * (2 * k + 5))
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(np.abs(z))
        c_big = np.where(z > 0, (1 - np.cos(root)) / z, (np.cosh(root) - 1) / -z)
        s_big = np.where(z > 0, (root - np.sin(root)) / root**3, (np.sinh(root) - root) / root**3)
    return np.where(small, c, c_big), np.where(small, s, s_big)


def universal_anomaly(q: np.ndarray, e: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """The universal anomaly chi (AU^0.5) ``dt`` days after the perihelion, for any e, solving
    ``e chi^3 S(z) + q chi = k dt`` with ``z = (1 - e) chi^2 / q`` by Newton's method kept inside
    a bracket (the left side grows monotonically with chi and is odd in it)."""
    sign = np.sign(dt)
    target = np.abs(dt) * GAUSS_K
    alpha = (1.0 - e) / q
    lo, hi = np.zeros_like(target), target / q
    chi = np.cbrt(6.0 * target)  # the parabola's far-from-perihelion solution
    chi = np.where((chi > lo) & (chi < hi), chi, 0.5 * (lo + hi))
    for _ in range(200):
        c, s = stumpff(alpha * chi * chi)
        value = e * chi**3 * s + q * chi - target
        slope = e * chi * chi * c + q
        lo, hi = np.where(value < 0, chi, lo), np.where(value > 0, chi, hi)
        step = chi - value / slope
        step = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
        if np.all(np.abs(step - chi) <= 1e-14 * np.maximum(chi, 1.0)):
            chi = step
            break
        chi = step
    return np.asarray(sign * chi)


def _comet_positions(comets: Comets, jd_tt: np.ndarray) -> np.ndarray:
    """Two-body positions from the perihelion (f and g functions of the universal anomaly)."""
    times = _times_for(len(comets), jd_tt)
    q, e = comets.q[:, None], comets.e[:, None]
    dt = times - comets.perihelion_tt[:, None]
    chi = universal_anomaly(np.broadcast_to(q, dt.shape), np.broadcast_to(e, dt.shape), dt)
    c, s = stumpff((1.0 - e) / q * chi * chi)
    f = 1.0 - chi * chi * c / q
    g = dt - chi**3 * s / GAUSS_K
    speed = GAUSS_K * np.sqrt((1.0 + e) / q)  # at the perihelion, AU/day
    return _to_equatorial(f * q, g * speed, comets.peri, comets.node, comets.incl)


def observer(jd_utc: np.ndarray | Time, site: Site | None) -> np.ndarray:
    """Heliocentric ICRS position of the geocentre or of a site, AU, shape (3, times)."""
    times = jd_utc if isinstance(jd_utc, Time) else _times(jd_utc)
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
    orbits: Orbits | Comets, jd_utc: np.ndarray, site: Site | None, *, light_time: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Astrometric RA, Dec (degrees) and distance (AU), each of shape (orbits, times)."""
    times = _times(jd_utc)
    tt = np.asarray(times.tt.jd, float)
    where = observer(times, site)[:, None, :]
    target = heliocentric(orbits, tt)
    for _ in range(2 if light_time else 0):
        tau = np.sqrt(((target - where) ** 2).sum(axis=0)) / C_AU_DAY
        target = heliocentric(orbits, tt[None, :] - tau)
    rel = target - where
    distance = np.sqrt((rel**2).sum(axis=0))
    ra = np.rad2deg(np.arctan2(rel[1], rel[0])) % 360.0
    dec = np.rad2deg(np.arcsin(rel[2] / distance))
    return ra, dec, distance
