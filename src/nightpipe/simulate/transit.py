"""The transit light curve of the target (batman) and a sinusoidal variable star."""

from __future__ import annotations

import batman
import numpy as np


def transit_flux(
    times: np.ndarray,
    *,
    t0: float,
    period: float,
    rp: float,
    a: float,
    inc: float,
    u: tuple[float, float],
    exptime_days: float,
) -> np.ndarray:
    """Noiseless relative flux of a transited star, averaged over each exposure.

    Parameters
    ----------
    times
        Mid-exposure times, days (same time scale as ``t0``, e.g. BJD_TDB).
    t0
        Mid-transit time, days.
    period
        Orbital period, days.
    rp, a, inc
        Radius ratio, semi-major axis in stellar radii, inclination (degrees).
    u
        Quadratic limb-darkening coefficients.
    exptime_days
        Exposure time, days (the model is super-sampled 7 times over it).

    Returns
    -------
    numpy.ndarray
        Relative flux, 1 out of transit.
    """
    params = batman.TransitParams()
    params.t0 = t0
    params.per = period
    params.rp = rp
    params.a = a
    params.inc = inc
    params.ecc = 0.0
    params.w = 90.0
    params.u = list(u)
    params.limb_dark = "quadratic"
    t = np.ascontiguousarray(times, dtype=float)
    if t.size == 0:
        return np.zeros(0)
    model = batman.TransitModel(params, t, supersample_factor=7, exp_time=exptime_days)
    return np.asarray(model.light_curve(params), dtype=float)


def sinusoid(times: np.ndarray, amplitude: float, period_days: float, phase: float) -> np.ndarray:
    """Relative flux ``1 + amplitude * sin(2 pi t / period + phase)``."""
    return np.asarray(1.0 + amplitude * np.sin(2 * np.pi * np.asarray(times) / period_days + phase))
