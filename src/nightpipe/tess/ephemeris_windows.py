"""The ephemeris maths of a space light curve: folding, epochs, finding the ephemeris, transit windows.

Pure functions on time arrays and :class:`~nightpipe.timeseries.lightcurve.LightCurve` objects;
:mod:`nightpipe.tess.lightcurves` fits the windows they cut (and re-exports these names).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import TransitPriors

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def phase_fold(time: FloatArray, period: float, t0: float) -> FloatArray:
    """Time from the nearest mid-transit, days, in ``[-period/2, period/2)``.

    Examples
    --------
    >>> phase_fold(np.array([10.0, 10.9, 12.4]), 1.0, 0.0).round(2).tolist()
    [0.0, -0.1, 0.4]
    """
    return np.asarray((time - t0 + 0.5 * period) % period - 0.5 * period, dtype=np.float64)


def epoch_numbers(time: FloatArray, period: float, t0: float) -> IntArray:
    """The transit epoch nearest each time (0 at ``t0``)."""
    return np.round((np.asarray(time) - t0) / period).astype(np.int64)


def find_ephemeris(
    lc: LightCurve, period: float, durations: tuple[float, ...] = (0.04, 0.06, 0.08, 0.1, 0.13, 0.17, 0.22)
) -> tuple[float, float, float]:
    """Mid-time, duration and depth of the deepest box-shaped dip at a known period.

    Uses astropy's box least squares at the single ``period``; the mid-time returned is the
    one of the epoch nearest the middle of the light curve.
    """
    from astropy.timeseries import BoxLeastSquares

    usable = np.asarray([d for d in durations if d < 0.5 * period])
    if usable.size == 0:
        raise TimeseriesError(f"period {period} d too short for a transit search", hint="check --period")
    err = lc.flux_err if np.all(np.isfinite(lc.flux_err)) and np.all(lc.flux_err > 0) else None
    bls = BoxLeastSquares(lc.time, lc.flux, dy=err)
    result = bls.power(np.array([period]), usable, oversample=20)
    t0 = float(result.transit_time[0])
    mid = float(np.median(lc.time))
    t0 += round((mid - t0) / period) * period
    return t0, float(result.duration[0]), float(result.depth[0])


def transit_duration(priors: TransitPriors) -> float | None:
    """Total duration (days) from the priors' a/Rs, inclination and radius ratio, when known."""
    if priors.a_rs is None:
        return None
    inc = math.radians(priors.inc if priors.inc is not None else 90.0)
    rp = priors.rp_rs or 0.1
    b = priors.a_rs * math.cos(inc)
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / (priors.a_rs * math.sin(inc))
    return priors.period / math.pi * math.asin(min(arg, 1.0))


@dataclass(frozen=True)
class Window:
    """The points around one transit: its epoch, index of the points, and how well it is covered."""

    epoch: int
    index: IntArray
    n_in: int
    n_before: int
    n_after: int

    @property
    def complete(self) -> bool:
        """In-transit points and out-of-transit points on both sides."""
        return self.n_in >= 5 and self.n_before >= 5 and self.n_after >= 5


def transit_windows(
    time: FloatArray, period: float, t0: float, duration: float, *, half_width: float = 2.0
) -> list[Window]:
    """The windows of ``half_width`` durations either side of each mid-transit the data touch."""
    dt = phase_fold(time, period, t0)
    epochs = epoch_numbers(time, period, t0)
    near = np.abs(dt) <= half_width * duration
    windows = []
    for epoch in np.unique(epochs[near]):
        index = np.flatnonzero(near & (epochs == epoch))
        local = dt[index]
        windows.append(
            Window(
                epoch=int(epoch),
                index=index,
                n_in=int((np.abs(local) < 0.5 * duration).sum()),
                n_before=int((local <= -0.75 * duration).sum()),
                n_after=int((local >= 0.75 * duration).sum()),
            )
        )
    return windows


def normalise_windows(
    lc: LightCurve, windows: list[Window], period: float, t0: float, duration: float, *, order: int = 1
) -> LightCurve:
    """Keep only the window points, each window divided by a polynomial (``order``) fitted to its
    out-of-transit points; windows without out-of-transit points on both sides are dropped."""
    keep: list[IntArray] = []
    flux = lc.flux.copy()
    err = lc.flux_err.copy()
    dt = phase_fold(lc.time, period, t0)
    for w in windows:
        if not w.complete:
            log.info("transit epoch %d is only partly covered: left out of the fit", w.epoch)
            continue
        # the baseline avoids 1.5 durations around mid-transit: the duration may be underestimated
        out = w.index[np.abs(dt[w.index]) >= 0.75 * duration]
        x = lc.time[out] - lc.time[w.index].mean()
        coef = np.polyfit(x, lc.flux[out], min(order, max(0, out.size - 2)))
        trend = np.polyval(coef, lc.time[w.index] - lc.time[w.index].mean())
        flux[w.index] = lc.flux[w.index] / trend
        err[w.index] = lc.flux_err[w.index] / trend
        keep.append(w.index)
    if not keep:
        raise TimeseriesError(
            "no transit is fully covered (in-transit points and baseline on both sides)",
            hint="check the period and mid-time, or give a longer light curve",
        )
    index = np.concatenate(keep)
    return lc.with_flux(flux, err, window_normalised=True).select(index)
