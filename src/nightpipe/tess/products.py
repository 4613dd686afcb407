"""Files written by ``nightpipe tess`` for one target, under ``lightcurves/<label>/``.

* ``<target>.ecsv``: the light curve (BJD_TDB, relative flux and error, aux vectors), with the
  time source, files and choices in the table's meta;
* ``<target>_photometry.ecsv``: for pixel files, every cadence (quality word, good flag,
  flux in e-/s, background, centroid);
* ``<target>_fit.json``: the shared transit fit's summary plus the per-transit mid-times;
* ``<target>_transit_times.csv``: epoch, mid-time, error, O-C (minutes);
* ``<target>_lc.png``, ``<target>_fold.png`` (phase-folded with the model) and ``<target>_oc.png``.

Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.tess.lightcurves import MultiTransitResult, phase_fold
from nightpipe.tess.results import TargetResult
from nightpipe.timeseries.lightcurve import LightCurve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nightpipe.tess.photometry import PixelPhotometry

log = logging.getLogger(__name__)


def slug(name: str) -> str:
    """A file-name-safe form of a target name.

    Examples
    --------
    >>> slug("TIC 25155310")
    'TIC_25155310'
    """
    return "".join(c if c.isalnum() or c in "-_+." else "_" for c in name.strip()) or "target"


def _plain(value: Any) -> Any:
    """JSON- and ECSV-safe copy of a meta value."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def lightcurve_table(lc: LightCurve) -> Table:
    """The light curve as a table: ``bjd_tdb``, ``rel_flux``, ``rel_flux_err`` and aux columns."""
    table = Table()
    table["bjd_tdb"] = lc.time
    table["rel_flux"] = lc.flux
    table["rel_flux_err"] = lc.flux_err
    for name, values in lc.aux.items():
        table[name] = values
    table.meta = {k: _plain(v) for k, v in lc.meta.items() if k != "quality"}
    table.meta["time_scale"] = lc.time_scale
    return table


def photometry_table(phot: PixelPhotometry) -> Table:
    """Every cadence of a pixel file's photometry (good or not)."""
    table = Table()
    table["bjd_tdb"] = phot.time
    table["flux"] = phot.flux
    table["flux_err"] = phot.flux_err
    table["raw_flux"] = phot.raw_flux
    table["background"] = phot.background
    table["centroid_col"] = phot.centroid_col
    table["centroid_row"] = phot.centroid_row
    table["quality"] = phot.quality
    table["good"] = phot.good
    for name in ("flux", "flux_err", "raw_flux", "background"):
        table[name].unit = "electron / s"
    table.meta = {k: _plain(v) for k, v in phot.meta.items()}
    table.meta["aperture"] = phot.aperture.astype(int).tolist()
    return table


def write_table(table: Table, path: Path, fmt: str = "ascii.ecsv") -> Path:
    """Write an astropy table atomically."""
    with atomic_path(path, suffix=path.suffix) as tmp:
        table.write(tmp, format=fmt, overwrite=True)
    return path


def write_json(data: dict[str, Any], path: Path) -> Path:
    """Write JSON atomically (NaN becomes null)."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(_plain(data), handle, indent=2)
    return path


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def plot_lightcurve(lc: LightCurve, title: str, path: Path) -> Path:
    """Relative flux against time (BJD_TDB - 2450000)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(lc.time - 2450000.0, lc.flux, ".", ms=2, color="0.3")
    ax.set_xlabel(f"{lc.time_scale} - 2450000")
    ax.set_ylabel("relative flux")
    ax.set_title(title)
    return _save(fig, path)


def plot_folded(result: MultiTransitResult, title: str, path: Path) -> Path:
    """Window-normalised flux folded on the period, binned points and the fitted model."""
    from matplotlib.figure import Figure

    fit = result.fit
    period = float(fit.extra["period"])
    tc = fit.value("tc")
    lc = fit.lc.select(fit.used)
    phase_h = phase_fold(lc.time, period, tc) * 24.0
    detrended = fit.detrended_flux
    model = fit.transit_model
    order = np.argsort(phase_h)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(phase_h, detrended, ".", ms=2, color="0.6", label="data")
    edges = np.linspace(phase_h.min(), phase_h.max(), 60)
    index = np.digitize(phase_h, edges)
    centres = [phase_h[index == i].mean() for i in np.unique(index)]
    means = [detrended[index == i].mean() for i in np.unique(index)]
    ax.plot(centres, means, "o", ms=4, color="C0", label="binned")
    ax.plot(phase_h[order], model[order], "-", color="C3", label="model")
    ax.set_xlabel("hours from mid-transit")
    ax.set_ylabel("relative flux")
    rp = fit.params["rp_rs"]
    ax.set_title(f"{title}: P = {period:.6f} d, Rp/Rs = {rp.median:.4f} ± {rp.err:.4f}")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_oc(result: MultiTransitResult, title: str, path: Path) -> Path:
    """Observed minus calculated mid-times (minutes) against epoch."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    epochs = [t.epoch for t in result.times]
    ax.errorbar(epochs, [t.o_minus_c_min for t in result.times], [t.err_min for t in result.times], fmt="o")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("O - C (min)")
    ax.set_title(title)
    return _save(fig, path)


def transit_times_table(result: MultiTransitResult) -> Table:
    """Epoch, mid-time (BJD_TDB), error, predicted time and O-C in minutes."""
    rows = [t.as_dict() for t in result.times]
    names = ("epoch", "tc", "tc_err", "predicted", "o_minus_c_min", "err_min", "n_points")
    return Table(rows=[[r[n] for n in names] for r in rows], names=names) if rows else Table(names=names)


def cadence_s(lc: LightCurve) -> float | None:
    """The typical time between cadences, seconds (the integration time of TESS/Kepler data)."""
    if len(lc) < 2:
        return None
    step = float(np.median(np.diff(np.sort(lc.time)))) * 86400.0
    return step if np.isfinite(step) and step > 0 else None


def write_products(result: TargetResult, output: Path) -> dict[str, Path]:
    """Write every product of one target; returns them by kind.

    The light curve, fit JSON, AAVSO report and fit/diagnostic/corner plots are the shared
    ones of :func:`nightpipe.timeseries.products.write_products` (the same as for a ground
    night); the TESS-specific ones (full light curve with provenance, per-cadence photometry,
    folded and O-C plots, transit times) are added.
    """
    from nightpipe.timeseries.plots import plot_corner, plot_diagnostics
    from nightpipe.timeseries.products import write_products as write_shared

    folder = Path(output) / "lightcurves" / result.label
    stem = slug(result.target)
    out: dict[str, Path] = {}
    out["lightcurve"] = write_table(lightcurve_table(result.combined), folder / f"{stem}.ecsv")
    photometries = [c.photometry for c in result.curves if c.photometry is not None]
    for i, phot in enumerate(photometries):
        suffix = "" if i == 0 else f"_{i + 1}"
        out[f"photometry{suffix}"] = write_table(
            photometry_table(phot), folder / f"{stem}_photometry{suffix}.ecsv"
        )
    out["lc_plot"] = plot_lightcurve(result.combined, result.target, folder / f"{stem}_lc.png")
    multi = result.fit
    if multi is None:
        shared = write_shared(folder, stem, result.combined, None, plots=True)
        if result.fit_error:
            out["fit"] = write_json(
                {"target": result.target, "error": result.fit_error}, folder / f"{stem}_fit.json"
            )
    else:
        fit = multi.fit
        n_transits = len(multi.windows_lc.meta.get("epochs", []))
        extra = {
            "multi_transit": multi.summary()["multi_transit"],
            "files": [str(c.path) for c in result.curves],
        }
        mission = str(result.combined.meta.get("mission", "space"))
        shared = write_shared(
            folder,
            stem,
            fit.lc,
            fit,
            planet=f"{result.target} b",
            filter_name=mission,
            exptime_s=cadence_s(result.combined),
            extra=extra,
            plots=n_transits <= 1,  # the shared fit plot is drawn against time: one transit only
        )
        if n_transits > 1:
            shared["plot_diagnostics"] = plot_diagnostics(result.combined, folder / f"{stem}_diagnostics.png")
            if fit.samples is not None:
                shared["plot_corner"] = plot_corner(
                    fit.samples, fit.sample_names, folder / f"{stem}_corner.png"
                )
        out["fold_plot"] = plot_folded(multi, result.target, folder / f"{stem}_fold.png")
        if multi.times:
            out["transit_times"] = write_table(
                transit_times_table(multi), folder / f"{stem}_transit_times.csv", "ascii.csv"
            )
            out["oc_plot"] = plot_oc(multi, result.target, folder / f"{stem}_oc.png")
    out.update(shared)
    log.info("%s: %d products in %s", result.target, len(out), folder)
    return out
