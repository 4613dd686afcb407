"""What a fit starts from: the known planet (:class:`TransitPriors`), how to fit
(:class:`FitOptions`), the order of the transit parameters and the starting point on a light curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.lightcurve import LightCurve

#: The transit parameters, in the order the transit curve takes them.
PARAM_NAMES = ("tc", "rp_rs", "a_rs", "inc", "u1", "u2")

TimeScale = Literal["tdb", "utc"]


def t0_to_tdb(t0: float, scale: str) -> float:
    """A mid-transit time published as BJD in ``scale`` (``"tdb"`` or ``"utc"``), as BJD_TDB.

    BJD_UTC, which older papers give, is the barycentric time counted in UTC: BJD_TDB is later by
    the leap seconds of the time plus 32.184 s (and TDB - TT, under 2 ms), 69.184 s in 2017
    (Eastman et al. 2010). astropy's UTC -> TDB does the conversion.

    Examples
    --------
    >>> round((t0_to_tdb(2458107.5, "utc") - 2458107.5) * 86400, 2)
    69.18
    >>> t0_to_tdb(2455867.402743, "tdb")
    2455867.402743
    """
    if scale == "tdb":
        return t0
    if scale != "utc":
        raise TimeseriesError(f"unknown time standard {scale!r} of t0", hint='use t0_scale = "tdb" or "utc"')
    from astropy.time import Time

    utc = Time(t0, format="jd", scale="utc")
    tdb = utc.tdb
    return t0 + float((tdb.jd1 - utc.jd1) + (tdb.jd2 - utc.jd2))


@dataclass(frozen=True)
class TransitPriors:
    """What is known about the planet before the fit.

    Parameters
    ----------
    period
        Orbital period, days (fixed in the fit).
    t0, t0_err, period_err
        Reference mid-transit time (same scale as the light curve, normally BJD_TDB) and errors,
        for the predicted mid-time and the O-C; ``t0`` also starts the fit.
    t0_scale, t0_published
        The time standard the reference time was published in and its value as published
        (``t0`` is that value in BJD_TDB: :func:`t0_to_tdb`); ``t0_published`` is ``None`` when
        ``t0`` is the published value itself.
    rp_rs
        Starting value of the radius ratio (free, uniform prior).
    a_rs, a_rs_err, inc, inc_err
        Known scaled semi-major axis and inclination (degrees): Gaussian priors.
    ecc, omega
        Eccentricity and argument of periastron (degrees), fixed.
    u, u_err
        Quadratic limb-darkening coefficients; fixed when ``u_err`` is None, else Gaussian priors.
    """

    period: float
    t0: float | None = None
    t0_err: float | None = None
    period_err: float | None = None
    t0_scale: TimeScale = "tdb"
    t0_published: float | None = None
    rp_rs: float | None = None
    a_rs: float | None = None
    a_rs_err: float | None = None
    inc: float | None = None
    inc_err: float | None = None
    ecc: float = 0.0
    omega: float = 90.0
    u: tuple[float, float] | None = None
    u_err: float | None = None

    def __post_init__(self) -> None:
        if not (self.period > 0 and math.isfinite(self.period)):
            raise TimeseriesError(f"the period must be positive, got {self.period}", hint="give --period")

    @property
    def fit_ld(self) -> bool:
        """True when the limb-darkening coefficients are free parameters."""
        return self.u is None or self.u_err is not None

    def ephemeris(self) -> dict[str, float | str | None]:
        """The reference time as used (BJD_TDB), as published, its standard and the shift between."""
        published = self.t0 if self.t0_published is None else self.t0_published
        shift = None if self.t0 is None or published is None else (self.t0 - published) * 86400.0
        return {
            "t0_bjd_tdb": self.t0,
            "t0_published": published,
            "t0_scale": self.t0_scale,
            "t0_shift_s": shift,
        }

    def predicted_tc(self, near: float) -> tuple[float, float] | None:
        """The ephemeris mid-time closest to ``near`` and its error (days), or None without ``t0``."""
        if self.t0 is None:
            return None
        epoch = round((near - self.t0) / self.period)
        err = math.hypot(self.t0_err or 0.0, epoch * (self.period_err or 0.0))
        return self.t0 + epoch * self.period, err


@dataclass(frozen=True)
class FitOptions:
    """How to fit: detrending candidates, outlier rule, sampler settings."""

    detrend: tuple[str, ...] = ("airmass", "fwhm", "sky", "xshift", "yshift", "time", "flip")
    outlier_sigma: float = 4.0
    sampler: str = "emcee"
    walkers: int = 64
    steps: int = 1500
    seed: int = 42
    exptime_s: float | None = None
    bin_minutes: float = 10.0


SOLAR_DENSITY_KG_M3 = 1408.0
GRAVITATIONAL_CONSTANT = 6.674e-11


def a_rs_from_density(period_days: float, density_solar: float = 1.0) -> float:
    """a/Rs of a circular orbit of ``period_days`` round a star of mean density ``density_solar``
    (solar units): ``(G rho P^2 / 3 pi)^(1/3)`` (Seager & Mallen-Ornelas 2003).

    >>> round(a_rs_from_density(365.25), 1), round(a_rs_from_density(2.15), 2)
    (214.9, 7.01)
    """
    p = period_days * 86400.0
    rho = density_solar * SOLAR_DENSITY_KG_M3
    return float((GRAVITATIONAL_CONSTANT * rho * p**2 / (3.0 * math.pi)) ** (1.0 / 3.0))


def starting_point(lc: LightCurve, priors: TransitPriors) -> dict[str, float]:
    """Values of every parameter to start from: the ephemeris mid-time when it falls in the
    observed span, else the deepest point of the smoothed curve; the known values, else a/Rs of a
    star of solar density (the duration of a Sun-like host, :func:`a_rs_from_density`) and
    defaults."""
    pred = priors.predicted_tc(float(np.median(lc.time)))
    span = (float(lc.time.min()), float(lc.time.max()))
    if pred is not None and span[0] < pred[0] < span[1]:
        tc = pred[0]
    else:  # the deepest point of a smoothed curve
        k = max(3, len(lc) // 15)
        smooth = np.convolve(lc.flux, np.ones(k) / k, mode="same")
        inner = slice(k // 2, len(lc) - k // 2)
        tc = float(lc.time[inner][np.argmin(smooth[inner])])
    u = priors.u or (0.4, 0.25)
    return {
        "tc": tc,
        "rp_rs": priors.rp_rs or 0.1,
        "a_rs": priors.a_rs or min(max(a_rs_from_density(priors.period), 2.0), 150.0),
        "inc": min(priors.inc or 89.0, 89.9),
        "u1": u[0],
        "u2": u[1],
    }
