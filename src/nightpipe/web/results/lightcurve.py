"""A light curve as JSON for uPlot: times, the target's relative flux, comparisons, model, residuals.

Read from the engine's AstroImageJ-style CSV (:mod:`nightpipe.timeseries.exports`) and fit JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from nightpipe.timeseries.csvmode import read_table
from nightpipe.web.results.products import LightCurveProducts


def _column(table: Any, name: str) -> list[float | None] | None:
    if name not in table.colnames:
        return None
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(table[name], dtype=float)]


def lightcurve_json(lc: LightCurveProducts) -> dict[str, Any]:
    """``time`` (BJD_TDB), ``flux``/``flux_err`` (target relative flux), ``comparisons`` (each named,
    normalised to its median), and with a fit ``model``, ``detrended``, ``residuals`` (detrended -
    model, None where the point was not used) and ``fit`` (the parameters)."""
    table = read_table(lc.csv)
    fit = json.loads(lc.fit_json.read_text(encoding="utf-8")) if lc.fit_json is not None else None
    time_name = "BJD_TDB" if "BJD_TDB" in table.colnames else table.colnames[0]
    names = list((fit or {}).get("comparisons", {}).get("names") or [])
    comparisons = []
    j = 2
    while f"rel_flux_C{j}" in table.colnames:
        flux = np.asarray(table[f"rel_flux_C{j}"], dtype=float)
        median = np.nanmedian(flux) if np.isfinite(flux).any() else 1.0
        name = names[j - 2] if j - 2 < len(names) else f"C{j}"
        comparisons.append({"name": name, "label": f"C{j}", "flux": _finite(flux / median)})
        j += 1
    out: dict[str, Any] = {
        "night": lc.night,
        "target": lc.target,
        "time_scale": time_name,
        "time": _column(table, time_name),
        "flux": _column(table, "rel_flux_T1"),
        "flux_err": _column(table, "rel_flux_err_T1"),
        "comparisons": comparisons,
        "model": None,
        "detrended": None,
        "residuals": None,
        "fit": None,
    }
    if fit is not None and "model_T1" in table.colnames:
        model = np.asarray(table["model_T1"], dtype=float)
        detrended = np.asarray(table["detrended_flux_T1"], dtype=float)
        out.update(model=_finite(model), detrended=_finite(detrended), residuals=_finite(detrended - model))
        out["fit"] = {
            "params": fit.get("params"),
            "derived": fit.get("derived"),
            "rms": fit.get("rms"),
            "chi2_red": fit.get("chi2_red"),
        }
    return out


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]
