"""The transit shape: the orbit tabulated once on a fixed time grid and batman's quadratic
limb-darkening flux, fast for many parameter sets (:class:`TransitCurve`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nightpipe.timeseries.transit.priors import TransitPriors

FloatArray = NDArray[np.float64]


#: Longest sub-exposure of the model's supersampling, seconds.
MAX_SUBEXPOSURE_S = 120.0
#: Most sub-exposures per exposure.
MAX_SUPERSAMPLE = 15


def supersample_factor(exptime_s: float | None) -> int:
    """Sub-exposures per exposure: none up to :data:`MAX_SUBEXPOSURE_S`, else enough for that.

    Examples
    --------
    >>> [supersample_factor(t) for t in (None, 60.0, 120.0, 200.0, 600.0, 1800.0)]
    [1, 1, 1, 2, 5, 15]
    """
    if exptime_s is None or not exptime_s > MAX_SUBEXPOSURE_S * (1 + 1e-9):
        return 1
    return min(MAX_SUPERSAMPLE, math.ceil(exptime_s / MAX_SUBEXPOSURE_S - 1e-9))


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
    ``batman.TransitModel`` (checked in the tests) at a fraction of the cost per call. Exposures
    longer than :data:`MAX_SUBEXPOSURE_S` are supersampled (sub-exposures of at most that, at most
    :data:`MAX_SUPERSAMPLE` of them) and averaged: averaging over an exposure ``T`` changes the
    model most at the contact points, by about ``depth * T / (8 * ingress)`` (the slope change
    ``depth / ingress`` of the kink over ``T / 8``), so 2-minute sub-exposures (TESS and Kepler
    short cadence, a night's 1-minute frames: none) keep it under 2.5e-4 for a 1 % transit with a
    10-minute ingress, as the previous rule (20-s sub-exposures, at most 15) gave a 30-minute
    Kepler cadence.
    """

    TABLE_STEP_DAYS = 1.0 / 86400.0

    def __init__(self, time: FloatArray, priors: TransitPriors, exptime_s: float | None = None) -> None:
        from batman import _quadratic_ld  # batman's compiled Mandel & Agol routine

        self._qld = _quadratic_ld._quadratic_ld
        time = np.ascontiguousarray(time, dtype=np.float64)
        self.supersample = supersample_factor(exptime_s)
        if exptime_s is not None and self.supersample > 1:
            offsets = np.linspace(-0.5, 0.5, self.supersample) * exptime_s / 86400.0
            time = (time[:, None] + offsets[None, :]).ravel()
        self.time = time
        self._t_min = float(time.min()) if time.size else 0.0
        self._t_max = float(time.max()) if time.size else 0.0
        span = self._t_max - self._t_min + 2 * self.TABLE_STEP_DAYS if time.size else 1.0
        self._grid = np.arange(-span, span + self.TABLE_STEP_DAYS, self.TABLE_STEP_DAYS)
        self._radius, self._sinwf = orbit_tables(self._grid, priors.period, priors.ecc, priors.omega)
        self.period = float(priors.period)
        self._well = transit_well(self._grid, self._radius, self._sinwf, self.period)

    def separation(
        self, tc: ArrayLike, a_rs: ArrayLike, inc: ArrayLike, time: FloatArray | None = None
    ) -> FloatArray:
        """Sky-projected separation in stellar radii (100 behind the star, as batman).

        Scalars give one row of separations; 1-D arrays of W parameter sets give W rows.
        ``time`` (default: every, supersampled, time of the curve) picks the times.
        """
        time = self.time if time is None else time
        tc_, a_, inc_ = (np.asarray(v, dtype=np.float64)[..., None] for v in (tc, a_rs, inc))
        pos = (time - tc_ - self._grid[0]) / self.TABLE_STEP_DAYS
        pos = np.clip(pos, 0.0, self._grid.size - 1.000001)
        index = pos.astype(np.int64)
        frac = pos - index
        radius = self._radius[index] * (1.0 - frac) + self._radius[index + 1] * frac
        s = self._sinwf[index] * (1.0 - frac) + self._sinwf[index + 1] * frac
        sin_i = np.sin(np.radians(inc_))
        d = a_ * radius * np.sqrt(np.clip(1.0 - s**2 * sin_i**2, 0.0, None))
        return np.ascontiguousarray(np.where(s > 0, d, 100.0))

    def candidates(self, tc: FloatArray, rp: FloatArray, a_rs: FloatArray) -> NDArray[np.intp]:
        """Index of the (supersampled) times where any of the parameter sets may be in transit.

        Elsewhere every parameter set's separation is at least ``1 + Rp/Rs`` (:func:`transit_well`
        bounds it over every inclination), so its flux is exactly 1: the model skips them.
        """
        tc = np.atleast_1d(np.asarray(tc, dtype=np.float64))
        a_min = float(np.min(np.atleast_1d(a_rs)))
        r_max = float(np.max(np.abs(np.atleast_1d(rp))))
        everything = np.arange(self.time.size)
        if self.time.size == 0 or a_min <= 0 or not math.isfinite(a_min + r_max):
            return everything
        tc_min, tc_max = float(tc.min()), float(tc.max())
        if tc_min + self._grid[0] > self._t_min or tc_max + self._grid[-1] < self._t_max:
            return everything  # times beyond the orbit table (clipped to its ends): no bound
        lo, hi = self._well.interval((1.0 + r_max) / a_min * (1.0 + 1e-6))
        if lo <= self._grid[0] or hi >= self._grid[-1]:
            return everything  # the transit reaches the ends of the table
        width = hi - lo + (tc_max - tc_min) + 4 * self.TABLE_STEP_DAYS
        if width >= self.period:
            return everything
        start = tc_min + lo - 2 * self.TABLE_STEP_DAYS
        return np.flatnonzero(np.mod(self.time - start, self.period) <= width)

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
        """Relative flux for W parameter sets at once (arrays of length W in, W x N out).

        Only the times where some set may be in transit (:meth:`candidates`) are computed; the
        others are exactly 1, as the full computation gives there.
        """
        n_sets = np.asarray(tc).size
        flux = np.ones((n_sets, self.time.size))
        cols = self.candidates(tc, rp, a_rs)
        if cols.size:
            ds = self.separation(tc, a_rs, inc, self.time[cols])
            part = np.empty_like(ds)
            for i in range(n_sets):  # batman gives exactly 1 where the separation is >= 1 + Rp/Rs
                part[i] = self._qld(ds[i], abs(float(rp[i])), float(u1[i]), float(u2[i]), 1)
            flux[:, cols] = part
        if self.supersample > 1:
            flux = flux.reshape(n_sets, -1, self.supersample).mean(axis=2)
        return flux


class TransitWell:
    """Lower bounds of the sky separation per unit ``a/Rs`` around mid-transit, for every
    inclination: ``interval(q)`` is the time range (days from mid-transit) outside which the
    separation is at least ``q * a/Rs``, within half a period either side."""

    def __init__(self, dt: FloatArray, left: FloatArray, right: FloatArray) -> None:
        self._dt = dt  # grid times of the bounds, increasing
        self._neg_left = -left  # left[k]: bound for every time in [dt[0], dt[k+1]] (nonincreasing)
        self._right = right  # right[k]: bound for every time in [dt[k], dt[-1]] (nondecreasing)

    def interval(self, q: float) -> tuple[float, float]:
        """``(lo, hi)``: outside, within the table, the separation is >= ``q * a/Rs``."""
        dt, right = self._dt, self._right
        k_hi = int(np.searchsorted(right, q, side="left"))  # first k with right[k] >= q
        hi = float(dt[min(k_hi, dt.size - 1)])
        k_lo = int(np.searchsorted(self._neg_left, -q, side="right")) - 1  # last k with left[k] >= q
        lo = float(dt[k_lo + 1]) if k_lo >= 0 else float(dt[0])
        return lo, hi


def transit_well(grid: FloatArray, radius: FloatArray, sinwf: FloatArray, period: float) -> TransitWell:
    """The bounds of :class:`TransitWell` from the orbit tables on ``grid`` (linear interpolation
    between nodes, as :meth:`TransitCurve.separation`), over half a period either side of 0.

    Between nodes ``k`` and ``k+1`` the interpolated radius is at least the smaller of the two and
    ``|sin(w+f)|`` at most the larger, so ``min(r) * sqrt(1 - max(s^2))`` bounds
    ``r * sqrt(1 - s^2 sin(i)^2)`` for every inclination; where both nodes are behind the star
    (``s <= 0``) the bound is infinite (batman's 100).
    """
    inner = np.flatnonzero(np.abs(grid) <= 0.5 * period)
    g, r, s = grid[inner], radius[inner], sinwf[inner]
    if g.size < 2:
        return TransitWell(np.array([-0.5 * period, 0.5 * period]), np.zeros(1), np.zeros(1))
    r_min = np.minimum(r[:-1], r[1:])
    s_max = np.maximum(np.abs(s[:-1]), np.abs(s[1:]))
    bound = r_min * np.sqrt(np.clip(1.0 - s_max**2, 0.0, None))
    bound = np.where((s[:-1] > 0) | (s[1:] > 0), bound, np.inf)
    left = np.minimum.accumulate(bound)  # interval j <= k: min over [g[0], g[k+1]]
    right = np.minimum.accumulate(bound[::-1])[::-1]  # intervals j >= k: min over [g[k], g[-1]]
    return TransitWell(g, left, right)
