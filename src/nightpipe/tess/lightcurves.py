"""Space light curves in the shared light-curve engine: quality masking, folding, multi-transit
fits with a known period, and per-transit mid-times for O-C.

A light-curve file (SPOC PDCSAP/SAP, HLSP) or a pixel file's photometry becomes a
:class:`~nightpipe.timeseries.lightcurve.LightCurve`; the transit fit is the shared
:func:`~nightpipe.timeseries.transit.fit_transit`. A TESS sector spans many transits, so
the light curve is cut into windows around each transit, each window is normalised by a
low-order polynomial fitted to its out-of-transit points (removing the slow stellar and
instrumental trends that a single global detrending cannot follow), and the windows are
fitted together with the period fixed. Each transit is then fitted on its own with the
shape held at the joint solution, giving its mid-time for an O-C diagram.

Folding, epochs and the transit windows are in :mod:`nightpipe.tess.ephemeris_windows`
(re-exported here).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nightpipe.errors import TimeseriesError
from nightpipe.tess.ephemeris_windows import (
    Window,
    epoch_numbers,
    find_ephemeris,
    normalise_windows,
    phase_fold,
    transit_duration,
    transit_windows,
)
from nightpipe.tess.quality import BitmaskName, bitmask_value, good_cadences
from nightpipe.tess.readers import LightCurveFile
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.transit import FitOptions, TransitFit, TransitPriors, fit_transit

log = logging.getLogger(__name__)

__all__ = [
    "AUX_COLUMNS",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "MultiTransitResult",
    "TransitTime",
    "Window",
    "epoch_numbers",
    "find_ephemeris",
    "fit_multi_transit",
    "fit_stacked",
    "lightcurve_from_file",
    "linear_ephemeris",
    "normalise_windows",
    "phase_fold",
    "transit_duration",
    "transit_times",
    "transit_windows",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Auxiliary columns of light-curve files carried into ``LightCurve.aux`` (file column -> aux name).
AUX_COLUMNS = {
    "SAP_BKG": "sky",
    "MOM_CENTR1": "x",
    "MOM_CENTR2": "y",
    "BKG": "sky",
    "SAP_X": "x",
    "SAP_Y": "y",
}


# --------------------------------------------------------------------------- from files


def lightcurve_from_file(
    lcf: LightCurveFile, *, quality_bitmask: BitmaskName | int = "default", normalize: bool = True
) -> LightCurve:
    """The good cadences of a light-curve file as a shared :class:`LightCurve`.

    Cadences whose quality word has a bit of ``quality_bitmask``, or whose time or flux is
    not finite, are dropped; times are BJD_TDB (``meta["time_scale"]`` says otherwise when
    the file is not barycentric).

    Raises
    ------
    TimeseriesError
        When no cadence is left.
    """
    bitmask = bitmask_value(lcf.mission, quality_bitmask)
    good = good_cadences(lcf.quality, bitmask) & np.isfinite(lcf.time) & np.isfinite(lcf.flux)
    if not good.any():
        raise TimeseriesError(
            f"no good cadence in {lcf.flux_column} after the quality mask {bitmask}",
            path=lcf.path,
            hint="try --quality none or another --flux-column",
        )
    aux = {}
    for column, name in AUX_COLUMNS.items():
        values = lcf.columns.get(column)
        if values is not None and name not in aux and np.isfinite(values[good]).all():
            aux[name] = values[good]
    err = lcf.flux_err[good]
    lc = LightCurve(
        time=lcf.time_bjd[good],
        flux=lcf.flux[good],
        flux_err=np.where(np.isfinite(err), err, np.nan),
        aux=aux,
        meta={
            "target": lcf.target,
            "file": str(lcf.path),
            "mission": lcf.mission,
            "flux_column": lcf.flux_column,
            "quality_bitmask": bitmask,
            "n_rejected_quality": int((~good_cadences(lcf.quality, bitmask)).sum()),
            "time_scale": "BJD_TDB" if lcf.time_system.is_bjd_tdb else "JD_TDB",
            "time_source": lcf.time_system.description,
        },
    )
    return lc.normalize() if normalize else lc


# --------------------------------------------------------------------------- fits


@dataclass(frozen=True, eq=False)
class TransitTime:
    """One transit's fitted mid-time and its O-C against the reference ephemeris."""

    epoch: int
    tc: float
    tc_err: float
    predicted: float
    n_points: int

    @property
    def o_minus_c_min(self) -> float:
        """Observed minus calculated, minutes."""
        return (self.tc - self.predicted) * 1440.0

    @property
    def err_min(self) -> float:
        """Error of the mid-time, minutes."""
        return self.tc_err * 1440.0

    def as_dict(self) -> dict[str, float | int]:
        """Plain numbers for JSON."""
        return {
            "epoch": self.epoch,
            "tc": self.tc,
            "tc_err": self.tc_err,
            "predicted": self.predicted,
            "o_minus_c_min": self.o_minus_c_min,
            "err_min": self.err_min,
            "n_points": self.n_points,
        }


@dataclass(frozen=True, eq=False)
class MultiTransitResult:
    """A joint fit of every covered transit, the per-transit mid-times and a refined ephemeris."""

    fit: TransitFit
    windows_lc: LightCurve
    t0: float
    duration: float
    times: list[TransitTime]
    ephemeris: dict[str, float] | None

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (the joint fit's summary plus the timing)."""
        out = self.fit.summary()
        out["multi_transit"] = {
            "period": self.fit.extra.get("period"),
            "reference_t0": self.t0,
            "window_duration_days": self.duration,
            "n_transits": len({int(e) for e in self.windows_lc.meta.get("epochs", [])}),
            "transit_times": [t.as_dict() for t in self.times],
            "linear_ephemeris": self.ephemeris,
        }
        return out


def fit_multi_transit(
    lc: LightCurve,
    priors: TransitPriors,
    options: FitOptions | None = None,
    *,
    per_transit: bool = True,
    window_order: int = 1,
) -> MultiTransitResult:
    """Fit all covered transits of a long light curve jointly (period fixed), then each alone.

    Parameters
    ----------
    lc
        The whole light curve (e.g. a TESS sector), BJD_TDB.
    priors
        Period (required), and when known ``t0``, ``a_rs``, ``inc``, limb darkening. Without
        ``t0`` the mid-time and duration come from a box search at the period.
    options
        Options of the shared fit; the detrending candidates are ignored (the windows are
        normalised instead).
    per_transit
        Also fit each transit's mid-time (shape fixed at the joint fit) for O-C.
    window_order
        Polynomial order of each window's baseline.

    Raises
    ------
    TimeseriesError
        When no transit is covered, or the fit fails.
    """
    opts = replace(options or FitOptions(), detrend=())
    lc = lc.sort().finite() if np.isfinite(lc.flux_err).all() else lc.sort()
    duration = transit_duration(priors)
    t0 = priors.t0
    if t0 is None or duration is None:
        found_t0, found_duration, depth = find_ephemeris(lc, priors.period)
        log.info("box search: t0 %.5f, duration %.3f d, depth %.5f", found_t0, found_duration, depth)
        t0 = found_t0 if t0 is None else t0
        duration = found_duration if duration is None else duration
    windows = transit_windows(lc.time, priors.period, t0, duration)
    flat = normalise_windows(lc, windows, priors.period, t0, duration, order=window_order)
    epochs = epoch_numbers(flat.time, priors.period, t0)
    flat = flat.with_meta(epochs=sorted({int(e) for e in epochs}))
    start_priors = replace(priors, t0=t0) if priors.t0 is None else priors
    fit = fit_stacked(flat, start_priors, t0, opts)
    times: list[TransitTime] = []
    ephemeris = None
    if per_transit:
        times = transit_times(flat, fit, priors.period, opts)
        ephemeris = linear_ephemeris(times, priors.period)
    return MultiTransitResult(
        fit=fit, windows_lc=flat, t0=t0, duration=duration, times=times, ephemeris=ephemeris
    )


def fit_stacked(flat: LightCurve, priors: TransitPriors, t0: float, options: FitOptions) -> TransitFit:
    """The shared transit fit of window-normalised transits, each shifted by whole periods onto
    the transit nearest the middle of the data.

    The period is fixed in the fit, so the shift changes no model value; it keeps the fit's
    time span to one window, which bounds the memory and time of the transit model's orbit
    table (tabulated over the span) whether the transits are days or years apart. The
    returned fit has the original times back, in time order (``aux["epoch_shift"]`` holds the
    periods each point was moved by), and ``tc`` is the mid-time of that middle transit.
    """
    period = priors.period
    epochs = epoch_numbers(flat.time, period, t0)
    middle = int(np.round(np.median(epochs))) if epochs.size else 0
    shift = (epochs - middle).astype(np.float64)
    stacked = replace(flat, time=flat.time - shift * period, aux={**flat.aux, "epoch_shift": shift})
    fit = fit_transit(stacked, priors, options)
    restored = replace(fit.lc, time=fit.lc.time + fit.lc.aux["epoch_shift"] * period)
    # back to time order: the light curve and the per-used-point arrays alike
    order = np.argsort(restored.time, kind="stable")
    rank = np.full(len(restored), -1)
    rank[fit.used] = np.arange(int(fit.used.sum()))
    used_order = rank[order[fit.used[order]]]
    return replace(
        fit,
        lc=restored.select(order),
        used=fit.used[order],
        transit_model=fit.transit_model[used_order],
        systematics=fit.systematics[used_order],
        residuals=fit.residuals[used_order],
        extra={**fit.extra, "period": period, "reference_epoch": middle},
    )


def transit_times(
    flat: LightCurve,
    fit: TransitFit,
    period: float,
    options: FitOptions | None = None,
) -> list[TransitTime]:
    """Mid-time of each transit in ``flat`` (window-normalised), shape fixed at ``fit``'s solution.

    Each window is fitted alone with ``a/Rs`` and the inclination held by tight Gaussian priors
    (1 %, 0.1 degree) at the joint values and the limb darkening fixed, so that its mid-time
    (and a free depth) are what the window decides. The reference ephemeris is the joint fit's
    mid-time plus whole periods, with epoch 0 the first transit in ``flat``.
    """
    opts = replace(options or FitOptions(), detrend=())
    tc_ref = fit.value("tc")
    shape = TransitPriors(
        period=period,
        t0=tc_ref,
        rp_rs=fit.value("rp_rs"),
        a_rs=fit.value("a_rs"),
        a_rs_err=0.01 * fit.value("a_rs"),
        inc=fit.value("inc"),
        inc_err=0.1,
        u=(fit.value("u1"), fit.value("u2")),
    )
    epochs = epoch_numbers(flat.time, period, tc_ref)
    if epochs.size:  # count epochs from the first transit observed
        tc_ref += int(epochs.min()) * period
        epochs = epochs - epochs.min()
    out: list[TransitTime] = []
    for epoch in np.unique(epochs):
        part = flat.select(epochs == epoch)
        if len(part) < 12:
            continue
        predicted = tc_ref + int(epoch) * period
        try:
            single = fit_transit(part, replace(shape, t0=predicted), opts)
        except TimeseriesError as exc:
            log.warning("transit epoch %d not fitted: %s", epoch, exc)
            continue
        tc = single.params["tc"]
        out.append(TransitTime(int(epoch), tc.median, tc.err, predicted, int(single.used.sum())))
    return out


def linear_ephemeris(times: list[TransitTime], period: float) -> dict[str, float] | None:
    """Weighted least-squares ``tc = T0 + E * P`` through the mid-times, with errors and chi2.

    ``None`` with fewer than two transits.
    """
    if len(times) < 2:
        return None
    epochs = np.array([t.epoch for t in times], dtype=np.float64)
    tc = np.array([t.tc for t in times])
    err = np.array([max(t.tc_err, 1e-7) for t in times])
    design = np.column_stack([np.ones_like(epochs), epochs]) / err[:, None]
    cov = np.linalg.inv(design.T @ design)
    coef = cov @ design.T @ (tc / err)
    resid = (tc - (coef[0] + coef[1] * epochs)) / err
    dof = max(1, len(times) - 2)
    return {
        "t0": float(coef[0]),
        "t0_err": float(math.sqrt(cov[0, 0])),
        "period": float(coef[1]),
        "period_err": float(math.sqrt(cov[1, 1])),
        "chi2_red": float(np.sum(resid**2) / dof),
        "input_period": period,
    }
