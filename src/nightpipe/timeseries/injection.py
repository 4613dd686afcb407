"""Injection-recovery on a real night: how well could this night have measured a transit?

The night's own light curve, with the fitted transit divided out (its systematics, red noise,
outliers and gaps kept), receives synthetic transits of the target's expected depth and duration
at ``n_positions`` mid-times spread over the night; each is recovered by the same fit as the night's
(:func:`~nightpipe.timeseries.transit.fit_transit`: the same detrending candidates chosen by BIC,
the same priors, with least squares instead of the sampler, which is what keeps this fast). The
recovered depths and mid-times against the injected ones, their spread and mean reported error
say whether the night's errors are honest; transits of decreasing depth injected at the middle
give the shallowest depth the night detects at ``DETECTION_SIGMA``; for those the transit's shape
(a/Rs, inclination, limb darkening) is held at the night's fitted values, so that the depth's error
is the night's noise alone and not the shape's degeneracies.

The ephemeris used to start each recovery is the injected mid-time (the real fit starts from the
ephemeris' prediction, which is as good for the injected transit as for the real one).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.transit import FitOptions, TransitCurve, TransitFit, TransitPriors, fit_transit

if TYPE_CHECKING:
    from nightpipe.config import TimeseriesConfig

log = logging.getLogger(__name__)

#: The product's name after the target's file stem.
SUFFIX = "_injection.json"

#: A depth counts as detected when it is this many times its error.
DETECTION_SIGMA = 3.0
#: Fractions of the expected depth injected at mid-night for the detection limit.
DEPTH_LADDER = (1.0, 0.5, 0.25, 0.125, 0.0625)


def _positions(time: np.ndarray, duration: float, n: int) -> np.ndarray:
    """``n`` mid-times for whole transits inside the night (or across it when it is too short)."""
    lo, hi = float(time.min()), float(time.max())
    if hi - lo > duration:
        lo, hi = lo + duration / 2, hi - duration / 2
    return np.linspace(lo, hi, n + 2)[1:-1] if n > 1 else np.array([(lo + hi) / 2])


def _recover(
    fit: TransitFit, priors: TransitPriors, options: FitOptions, base: np.ndarray, inject: dict[str, float]
) -> dict[str, float]:
    """Inject one transit into ``base`` and fit it; the injected and recovered values."""
    lc = fit.lc
    curve = TransitCurve(lc.time, priors, options.exptime_s)
    model = curve(inject["tc"], inject["rp_rs"], inject["a_rs"], inject["inc"], inject["u1"], inject["u2"])
    recovery_priors = replace(priors, t0=inject["tc"], t0_published=None, rp_rs=inject["rp_rs"])
    try:
        got = fit_transit(lc.with_flux(base * model, lc.flux_err), recovery_priors, options)
    except (np.linalg.LinAlgError, ValueError) as exc:  # a degenerate trial must not fail the night
        raise TimeseriesError(f"the fit of the injected transit failed ({exc})") from exc
    rp, tc = got.params["rp_rs"], got.params["tc"]
    return {
        "tc_injected": inject["tc"],
        "depth_injected": inject["rp_rs"] ** 2,
        "tc": tc.median,
        "tc_err": tc.err,
        "depth": rp.median**2,
        "depth_err": 2 * abs(rp.median) * rp.err,
    }


def injection_recovery(
    fit: TransitFit, priors: TransitPriors, options: FitOptions, *, n_positions: int = 6
) -> dict[str, Any]:
    """Inject and recover transits in the night of ``fit`` (module doc); a JSON-ready summary.

    Raises
    ------
    TimeseriesError
        When the night's light curve is too short for any injection.
    """
    lc = fit.lc
    if len(lc) < 12:
        raise TimeseriesError(f"only {len(lc)} points: no injection-recovery")
    values = {n: fit.value(n) for n in ("tc", "rp_rs", "a_rs", "inc", "u1", "u2")}
    expected_rp = priors.rp_rs or values["rp_rs"]
    curve = TransitCurve(lc.time, priors, options.exptime_s)
    own = curve(values["tc"], values["rp_rs"], values["a_rs"], values["inc"], values["u1"], values["u2"])
    base = lc.flux / own  # the night without its transit: systematics and noise kept
    duration = float(fit.extra.get("derived", {}).get("duration_days") or 0.1)
    quick = replace(options, sampler="none")
    trials = []
    for tc in _positions(lc.time, duration, n_positions):
        try:
            trials.append(
                _recover(fit, priors, quick, base, {**values, "tc": float(tc), "rp_rs": expected_rp})
            )
        except TimeseriesError as exc:
            log.warning("injection at %.5f not recovered: %s", tc, exc)
    ladder = []
    middle = float(_positions(lc.time, duration, 1)[0])
    shape = replace(
        priors,
        a_rs=values["a_rs"],
        a_rs_err=1e-4 * values["a_rs"],
        inc=values["inc"],
        inc_err=1e-3,
        u=(values["u1"], values["u2"]),
        u_err=None,
    )
    for fraction in DEPTH_LADDER:
        rp = expected_rp * math.sqrt(fraction)
        try:
            one = _recover(fit, shape, quick, base, {**values, "tc": middle, "rp_rs": rp})
        except TimeseriesError:
            break
        one["detected"] = bool(one["depth_err"] > 0 and one["depth"] / one["depth_err"] >= DETECTION_SIGMA)
        ladder.append(one)
        if not one["detected"]:
            break
    return _summary(trials, ladder, expected_rp**2, duration)


def _summary(
    trials: list[dict[str, float]], ladder: list[dict[str, Any]], depth: float, duration: float
) -> dict[str, Any]:
    """Spreads of the recovered depths and mid-times and the shallowest depth detected."""
    out: dict[str, Any] = {
        "method": (
            "synthetic transits of the expected depth and duration multiplied into the night's own "
            "light curve (its fitted transit divided out), recovered by the night's fit with least squares"
        ),
        "expected_depth": depth,
        "duration_days": duration,
        "injections": trials,
        "depth_ladder": ladder,
        "detection_sigma": DETECTION_SIGMA,
    }
    if trials:
        d = np.array([t["depth"] - t["depth_injected"] for t in trials])
        dt = np.array([t["tc"] - t["tc_injected"] for t in trials]) * 1440.0
        out["depth_bias"] = float(d.mean())
        out["depth_spread"] = float(d.std(ddof=1)) if d.size > 1 else math.nan
        out["depth_err_mean"] = float(np.mean([t["depth_err"] for t in trials]))
        out["tc_bias_min"] = float(dt.mean())
        out["tc_spread_min"] = float(dt.std(ddof=1)) if dt.size > 1 else math.nan
        out["tc_err_mean_min"] = float(np.mean([t["tc_err"] for t in trials]) * 1440.0)
    detected = [r["depth_injected"] for r in ladder if r["detected"]]
    out["shallowest_detected_depth"] = min(detected) if detected else None
    out["ladder_complete"] = bool(ladder) and not ladder[-1]["detected"]
    return out


def write_injection(
    outdir: Path,
    stem: str,
    fit: TransitFit,
    priors: TransitPriors,
    options: FitOptions,
    config: TimeseriesConfig,
) -> dict[str, Path]:
    """Run :func:`injection_recovery` with ``config.injections`` positions and write
    ``<stem>_injection.json`` beside the fit; ``{"injection": path}`` (empty when switched off or
    when the night is too short, which is logged)."""
    from nightpipe.frames.fitsio import atomic_open
    from nightpipe.store.values import jsonable

    if config.injections <= 0:
        return {}
    try:
        result = injection_recovery(fit, priors, options, n_positions=config.injections)
    except TimeseriesError as exc:
        log.warning("%s: no injection-recovery (%s)", stem, exc)
        return {}
    path = Path(outdir) / f"{stem}{SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(jsonable(result), handle, indent=1)
    log.info(
        "%s: injection-recovery of %d transits: depth bias %.2g, spread %.2g; shallowest detected %s",
        stem,
        len(result["injections"]),
        result.get("depth_bias", math.nan),
        result.get("depth_spread", math.nan),
        result["shallowest_detected_depth"],
    )
    return {"injection": path}
