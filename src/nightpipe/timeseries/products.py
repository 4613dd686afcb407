"""Glue between settings, the fit and the files: priors from a target, fit options, all outputs.

Used by both the night step (:mod:`nightpipe.timeseries.step`) and the CSV mode
(:mod:`nightpipe.timeseries.csvmode`), so that they produce the same products.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from nightpipe.config import TargetConfig, TimeseriesConfig
from nightpipe.errors import TimeseriesError
from nightpipe.timeseries.comparisons import ComparisonChoice
from nightpipe.timeseries.exports import write_aavso_report, write_aij_csv, write_fit_json
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.plots import plot_comparisons, plot_corner, plot_diagnostics, plot_fit
from nightpipe.timeseries.transit import FitOptions, TransitFit, TransitPriors
from nightpipe.timeseries.transit.priors import t0_to_tdb

log = logging.getLogger(__name__)


def priors_from_target(target: TargetConfig, **changes: Any) -> TransitPriors:
    """Transit priors from a configured target; ``changes`` override (e.g. from CLI flags).

    The target's ``t0_bjd`` is converted from its ``t0_scale`` to BJD_TDB, the scale of the light
    curves (a ``t0`` in ``changes`` is taken in ``changes["t0_scale"]``, default BJD_TDB).

    Raises
    ------
    TimeseriesError
        Without a period (the fit needs one).
    """
    values: dict[str, Any] = {
        "period": target.period,
        "t0": target.t0_bjd,
        "t0_err": target.t0_err,
        "period_err": target.period_err,
        "rp_rs": target.rp_rs,
        "a_rs": target.a_rs,
        "a_rs_err": target.a_rs_err,
        "inc": target.inclination,
        "inc_err": target.inclination_err,
        "ecc": target.ecc,
        "omega": target.omega,
        "u": target.limb_darkening,
        "u_err": target.limb_darkening_err,
    }
    values["t0_scale"] = target.t0_scale
    if changes.get("t0") is not None:
        values["t0_scale"] = "tdb"
    values.update({k: v for k, v in changes.items() if v is not None})
    if values["t0"] is not None and values["t0_scale"] != "tdb":
        values["t0_published"] = values["t0"]
        values["t0"] = t0_to_tdb(values["t0"], values["t0_scale"])
    if values["period"] is None:
        raise TimeseriesError(
            f"target {target.name} has no period",
            hint="set timeseries.targets[].period in the configuration or give --period",
        )
    return TransitPriors(**values)


def fit_options(config: TimeseriesConfig, *, exptime_s: float | None = None, **changes: Any) -> FitOptions:
    """Fit options from the ``timeseries`` settings (``changes`` override)."""
    values: dict[str, Any] = {
        "detrend": tuple(config.detrend),
        "outlier_sigma": config.outlier_sigma,
        "sampler": config.sampler,
        "walkers": config.walkers,
        "steps": config.steps,
        "seed": config.seed,
        "exptime_s": exptime_s,
    }
    values.update({k: v for k, v in changes.items() if v is not None})
    return FitOptions(**values)


def safe_stem(name: str) -> str:
    """A file-name-safe version of a target name (spaces and slashes become ``_``)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") or "target"


def write_products(
    outdir: Path | str,
    stem: str,
    lc: LightCurve,
    fit: TransitFit | None,
    *,
    comparisons: ComparisonChoice | None = None,
    comparison_names: list[str] | None = None,
    planet: str | None = None,
    obscode: str = "",
    filter_name: str = "CV",
    site: tuple[float | None, float | None, float | None] = (None, None, None),
    exptime_s: float | None = None,
    extra: dict[str, Any] | None = None,
    plots: bool = True,
) -> dict[str, Path]:
    """Write the CSV, the fit JSON, the AAVSO report and the plots; returns their paths by kind."""
    outdir = Path(outdir)
    out: dict[str, Path] = {"csv": write_aij_csv(outdir / f"{stem}.csv", lc, fit)}
    if fit is not None:
        info = dict(extra or {})
        if comparisons is not None:
            info["comparisons"] = {
                "manual": comparisons.manual,
                "stars": [int(s) for s in comparisons.stars],
                "weights": [float(w) for w in comparisons.weights],
                "report": comparisons.report(),
            }
            if comparison_names is not None:
                info["comparisons"]["names"] = comparison_names
        out["json"] = write_fit_json(outdir / f"{stem}_fit.json", fit, info)
        target = str(lc.meta.get("target") or stem)
        out["aavso"] = write_aavso_report(
            outdir / f"{stem}_AAVSO.txt",
            fit,
            star_name=target,
            planet_name=planet or f"{target} b",
            obscode=obscode,
            filter_name=filter_name,
            site=site,
            exptime_s=exptime_s,
            comp_stars=comparison_names
            or [f"C{j + 2}" for j in range(0 if comparisons is None else len(comparisons.stars))],
        )
    if plots:
        if fit is not None:
            out["plot_fit"] = plot_fit(fit, outdir / f"{stem}_fit.png")
            if fit.samples is not None:
                out["plot_corner"] = plot_corner(fit.samples, fit.sample_names, outdir / f"{stem}_corner.png")
        if lc.aux:
            out["plot_diagnostics"] = plot_diagnostics(lc, outdir / f"{stem}_diagnostics.png")
        loo = None if comparisons is None else comparisons.leave_one_out
        if loo is not None and loo.shape[1] > 1 and loo.shape[0] == len(lc):
            out["plot_comparisons"] = plot_comparisons(lc, loo, outdir / f"{stem}_comparisons.png")
    log.info("wrote %s", ", ".join(str(p) for p in out.values()))
    return out
