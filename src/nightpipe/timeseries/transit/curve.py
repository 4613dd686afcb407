"""The transit shape: the orbit tabulated once on a fixed time grid and batman's quadratic
limb-darkening flux, fast for many parameter sets (:class:`TransitCurve`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nightpipe.timeseries.transit.priors import TransitPriors

FloatArray = NDArray[np.float64]


def _kepler_true_anomaly(mean_anomaly: FloatArray, ecc: float) -> FloatArray:
    """True anomaly from the mean anomaly (Newton iterations on Kepler's equation)."""
    E = np.array(mean_anomaly, dtype=np.float64)
    if ecc == 0:
        return E
    for _ in range(50):
        dE = (E - ecc * np.sin(E) - mean_anomaly) / (1.0 - ecc * np.cos(E))
        E -= dE
        if float(np.max(np.abs(dE))) < 1e-13:
            break
    return np.asarray(
        2.0 * np.arctan2(np.sqrt(1.0 + ecc) * np.sin(E / 2.0), np.sqrt(1.0 - ecc) * np.cos(E / 2.0)),
        dtype=np.float64,
    )


def orbit_tables(
    dt: FloatArray, period: float, ecc: float, omega_deg: float
) -> tuple[FloatArray, FloatArray]:
    """Radius factor ``(1 - e^2) / (1 + e cos f)`` and ``sin(omega + f)`` at times ``dt`` from mid-transit.

    The sky separation in stellar radii is then ``a/Rs * radius * sqrt(1 - sin(w+f)^2 sin(i)^2)``
    (the planet is in front of the star where ``sin(w+f) > 0``), the same geometry as batman.
    """
    w = math.radians(omega_deg)
    f_c = math.pi / 2.0 - w  # true anomaly at conjunction
    E_c = 2.0 * math.atan(math.sqrt((1.0 - ecc) / (1.0 + ecc)) * math.tan(f_c / 2.0))
    M_c = E_c - ecc * math.sin(E_c)
    f = _kepler_true_anomaly(2.0 * math.pi * dt / period + M_c, ecc)
    radius = (1.0 - ecc**2) / (1.0 + ecc * np.cos(f))
    return radius, np.sin(w + f)


class TransitCurve:
    """A quadratic-limb-darkening transit on a fixed time grid, fast for many parameter sets.

    Period, eccentricity and periastron are fixed, so the orbit as a function of the time from
    mid-transit is tabulated once (step 1 s) and interpolated; the flux for a sky separation is
    batman's own quadratic-limb-darkening routine (Mandel & Agol 2002), so the result equals
    ``batman.TransitModel`` (checked in the tests) at a fraction of the cost per call. Exposures of
    30 s or more are supersampled (one point per 20 s, at most 15) and averaged.
    """

    TABLE_STEP_DAYS = 1.0 / 86400.0

    def __init__(self, time: FloatArray, priors: TransitPriors, exptime_s: float | None = None) -> None:
        from batman import _quadratic_ld  # batman's compiled Mandel & Agol routine

        self._qld = _quadratic_ld._quadratic_ld
        time = np.ascontiguousarray(time, dtype=np.float64)
        self.supersample = 1
        if exptime_s is not None and exptime_s >= 30:
            self.supersample = min(15, math.ceil(exptime_s / 20.0))
            offsets = np.linspace(-0.5, 0.5, self.supersample) * exptime_s / 86400.0
            time = (time[:, None] + offsets[None, :]).ravel()
        self.time = time
        span = float(time.max() - time.min()) + 2 * self.TABLE_STEP_DAYS if time.size else 1.0
        self._grid = np.arange(-span, span + self.TABLE_STEP_DAYS, self.TABLE_STEP_DAYS)
        self._radius, self._sinwf = orbit_tables(self._grid, priors.period, priors.ecc, priors.omega)

    def separation(self, tc: ArrayLike, a_rs: ArrayLike, inc: ArrayLike) -> FloatArray:
        """Sky-projected separation in stellar radii (100 behind the star, as batman).

        Scalars give one row of separations; 1-D arrays of W parameter sets give W rows.
        """
        tc_, a_, inc_ = (np.asarray(v, dtype=np.float64)[..., None] for v in (tc, a_rs, inc))
        pos = (self.time - tc_ - self._grid[0]) / self.TABLE_STEP_DAYS
        pos = np.clip(pos, 0.0, self._grid.size - 1.000001)
        index = pos.astype(np.int64)
        frac = pos - index
        radius = self._radius[index] * (1.0 - frac) + self._radius[index + 1] * frac
        s = self._sinwf[index] * (1.0 - frac) + self._sinwf[index + 1] * frac
        sin_i = np.sin(np.radians(inc_))
        d = a_ * radius * np.sqrt(np.clip(1.0 - s**2 * sin_i**2, 0.0, None))
        return np.ascontiguousarray(np.where(s > 0, d, 100.0))

    def __call__(self, tc: float, rp: float, a_rs: float, inc: float, u1: float, u2: float) -> FloatArray:
        """Relative flux of the transit alone (1 out of transit)."""
        row: FloatArray = self.batch(
            np.array([tc]), np.array([rp]), np.array([a_rs]), np.array([inc]), np.array([u1]), np.array([u2])
        )[0]
        return row

    def batch(
        self,
        tc: FloatArray,
        rp: FloatArray,
        a_rs: FloatArray,
        inc: FloatArray,
        u1: FloatArray,
        u2: FloatArray,
    ) -> FloatArray:
        """Relative flux for W parameter sets at once (arrays of length W in, W x N out)."""
        ds = self.separation(tc, a_rs, inc)
        flux = np.ones_like(ds)
        for i in range(ds.shape[0]):
            r = abs(float(rp[i]))
            inside = np.flatnonzero(ds[i] < 1.0 + r)  # elsewhere the flux is exactly 1
            if inside.size:
                flux[i, inside] = self._qld(
                    np.ascontiguousarray(ds[i, inside]), r, float(u1[i]), float(u2[i]), 1
                )
        if self.supersample > 1:
            flux = flux.reshape(ds.shape[0], -1, self.supersample).mean(axis=2)
        return flux
