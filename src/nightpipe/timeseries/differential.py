"""Differential photometry: relative flux of the target for every aperture, the best aperture, outliers.

Relative flux: ``R = T / E`` with ``E = sum_i w_i C_i / sum_i w_i`` over the comparisons present
in the frame, each ``C_i`` divided by its median over the night, with error
``R * sqrt((sT/T)^2 + (sE/E)^2)`` and ``sE^2 = sum_i w_i^2 sC_i^2 / (sum_i w_i)^2``. Every aperture
is normalised by its median out of transit (or overall).

The aperture is the one with the lowest scatter out of transit: the standard deviation of the
out-of-transit points around a quadratic in time (or, without an ephemeris, the point-to-point
scatter ``std(diff) / sqrt 2``, which ignores slow trends).

Outliers before the fit: a point further than ``sigma`` x 1.4826 MAD (of all such residuals) from
the median of its 6 neighbours (3 on each side) is rejected.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]


def relative_flux(
    target: FloatArray,
    target_err: FloatArray,
    comps: FloatArray,
    comps_err: FloatArray,
    weights: FloatArray,
    *,
    min_weight: float = 0.5,
) -> tuple[FloatArray, FloatArray]:
    """Relative flux and error of the target against the weighted comparison ensemble.

    Each comparison is first divided by its median over the frames; the ensemble of a frame is
    the weighted mean of the comparisons present in it (so one missing star does not lose the
    frame), and NaN when the stars present carry less than ``min_weight`` of the total weight.

    Parameters
    ----------
    target, target_err
        F (or F x K for K apertures) fluxes and errors of the target.
    comps, comps_err
        F x C (or F x C x K) fluxes and errors of the comparison stars (NaN where missing).
    weights
        C weights (any scale).

    Examples
    --------
    >>> comps = np.array([[50.0, 150.0], [50.0, 150.0]])
    >>> r, e = relative_flux(np.array([100.0, 100.0]), np.array([1.0, 1.0]), comps,
    ...                      np.zeros((2, 2)), np.array([1.0, 1.0]))
    >>> float(r[0]), float(e[0])
    (100.0, 1.0)
    """
    w = np.asarray(weights, dtype=np.float64)
    shape = (1, -1) + (1,) * (comps.ndim - 2)
    wb = w.reshape(shape)
    ok = np.isfinite(comps) & (comps > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        med = np.nanmedian(np.where(ok, comps, np.nan), axis=0, keepdims=True)
        norm = np.where(ok, comps / med, 0.0)
        norm_err = np.where(ok, comps_err / med, 0.0)
        wsum = np.sum(wb * ok, axis=1)
        ens = np.sum(wb * norm, axis=1) / wsum
        ens_err = np.sqrt(np.sum((wb * norm_err) ** 2, axis=1)) / wsum
        ens = np.where(wsum >= min_weight * w.sum(), ens, np.nan)
        rel = target / ens
        err = np.abs(rel) * np.sqrt((target_err / target) ** 2 + (ens_err / ens) ** 2)
    return np.asarray(rel, dtype=np.float64), np.asarray(err, dtype=np.float64)


def out_of_transit(
    time: FloatArray, tc: float | None, duration: float | None, *, margin: float = 0.01
) -> NDArray[np.bool_]:
    """True for points outside ``tc +- (duration/2 + margin)`` (all True without an ephemeris)."""
    if tc is None or duration is None:
        return np.ones(time.size, dtype=bool)
    return np.asarray(np.abs(time - tc) > duration / 2 + margin, dtype=bool)


def oot_scatter(time: FloatArray, flux: FloatArray, oot: NDArray[np.bool_]) -> float:
    """Scatter out of transit: std around a quadratic in time, or point-to-point when too few points."""
    ok = oot & np.isfinite(flux)
    if ok.sum() >= 10 and not ok.all():
        t = time[ok] - time[ok].mean()
        coef = np.polyfit(t, flux[ok], 2)
        return float(np.std(flux[ok] - np.polyval(coef, t)))
    good = flux[np.isfinite(flux)]
    if good.size < 3:
        return math.inf
    return float(np.std(np.diff(good)) / math.sqrt(2.0))


@dataclass(frozen=True)
class ApertureChoice:
    """The chosen aperture and the scatter of each one."""

    index: int
    radii: tuple[float, ...]
    scatter: tuple[float, ...]
    rule: str


def choose_aperture(
    time: FloatArray, rel: FloatArray, radii: tuple[float, ...], oot: NDArray[np.bool_]
) -> ApertureChoice:
    """The aperture (column of ``rel``, F x K) with the lowest out-of-transit scatter."""
    if rel.ndim != 2 or rel.shape[1] == 0:
        raise TimeseriesError(f"relative fluxes need one column per aperture, got shape {rel.shape}")
    scatter = []
    for k in range(rel.shape[1]):
        col = rel[:, k] / np.nanmedian(rel[oot, k] if oot.any() else rel[:, k])
        scatter.append(oot_scatter(time, col, oot))
    best = int(np.nanargmin(np.where(np.isfinite(scatter), scatter, np.inf)))
    rule = (
        "lowest std around a quadratic in time out of transit"
        if (~oot).any()
        else "lowest point-to-point scatter (no ephemeris)"
    )
    log.info(
        "aperture %.2f px chosen (%s): scatter %s",
        radii[best] if best < len(radii) else best,
        rule,
        [f"{100 * s:.3f} %" for s in scatter],
    )
    return ApertureChoice(best, tuple(radii), tuple(float(s) for s in scatter), rule)


def curve_of_growth(target_flux: FloatArray, mask: NDArray[np.bool_]) -> list[float]:
    """The target's curve of growth over the night: its median flux in each aperture on the
    frames of ``mask`` (out of transit), over that of the largest aperture (NaN where unknown).

    >>> curve_of_growth(np.array([[50.0, 90.0, 100.0], [40.0, 80.0, 100.0]]), np.array([True, True]))
    [0.45, 0.85, 1.0]
    """
    flux = np.asarray(target_flux, dtype=float)
    if flux.ndim != 2 or flux.shape[1] == 0:
        return []
    rows = flux[np.asarray(mask, dtype=bool)] if np.any(mask) else flux
    med = np.array([np.nanmedian(c) if np.isfinite(c).any() else math.nan for c in rows.T])
    ref = med[-1]
    if not (np.isfinite(ref) and ref > 0):
        return [math.nan] * int(med.size)
    return [float(v / ref) for v in med]


def running_median_outliers(flux: FloatArray, *, sigma: float = 4.0, window: int = 7) -> NDArray[np.bool_]:
    """True for points further than ``sigma`` x 1.4826 MAD from the median of their neighbours."""
    good = np.isfinite(flux)
    out = ~good
    if good.sum() < window:
        return out
    values = flux[good]
    half = window // 2
    padded = np.pad(values, half, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window).copy()
    windows[:, half] = np.nan  # the median of the neighbours, without the point itself
    resid = values - np.nanmedian(windows, axis=1)
    mad = 1.4826 * np.median(np.abs(resid - np.median(resid)))
    if mad == 0:
        return out
    bad = np.abs(resid) > sigma * mad
    out[np.flatnonzero(good)[bad]] = True
    return out
