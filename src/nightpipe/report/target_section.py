"""The report's section of one target, science first: the light curve (model, binned points,
residuals; interactive when uPlot is at hand), the parameter table, the field with the target and
comparison stars drawn, the comparison-star table and a compact figure of the best of them, the
chosen aperture's curve of growth, then
the diagnostics (detrending vectors, the posterior's corner plot)."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from nightpipe.config import Settings, TargetConfig
from nightpipe.report.aperture_section import aperture_section
from nightpipe.report.comparison_section import compact_comparisons, comparison_table
from nightpipe.report.embed import png_data_uri, table_html
from nightpipe.report.field_figure import field_figure
from nightpipe.report.interactive import ChartLibrary, Series, chart_html
from nightpipe.report.parameter_table import parameter_rows


def _image(path: Path, alt: str, caption: str = "") -> str:
    if not path.is_file():
        return ""
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure><img src='{png_data_uri(path)}' alt='{html.escape(alt)}'>{text}</figure>"


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def light_curve_charts(csv_path: Path, fit: dict[str, Any], chart_id: str) -> str:
    """The interactive light curve (detrended flux and model) and its residuals, hours from Tc."""
    if not csv_path.is_file():
        return ""
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "detrended_flux_T1" not in rows[0]:
        return ""
    tc = float((fit.get("params") or {}).get("tc", {}).get("median") or _float(rows[0]["BJD_TDB"]) or 0)
    hours = [((_float(r["BJD_TDB"]) or tc) - tc) * 24.0 for r in rows]
    flux = [_float(r["detrended_flux_T1"]) for r in rows]
    model = [_float(r.get("model_T1")) for r in rows]
    resid = [None if f is None or m is None else f - m for f, m in zip(flux, model, strict=True)]
    frames = [Path(str(f)).name for f in (fit.get("meta") or {}).get("frames") or ()]
    if len(frames) != len(rows):
        frames = [f"point {k + 1}" for k in range(len(rows))]
    xlabel = "hours from mid-transit"
    curve = chart_html(
        f"{chart_id}-lc",
        hours,
        [Series("detrended flux", flux, "#5a8fd8"), Series("model", model, "#d62728", line=True)],
        xlabel=xlabel,
        ylabel="relative flux",
        frames=frames,
        sync=chart_id,
    )
    residuals = chart_html(
        f"{chart_id}-resid",
        hours,
        [Series("residual", resid, "#777777")],
        xlabel=xlabel,
        ylabel="residual",
        frames=frames,
        sync=chart_id,
        height=150,
    )
    return (
        "<p class='hint'>Drag to zoom, double-click to reset; hover a point for its frame.</p>"
        + curve
        + residuals
    )


def _target_config(settings: Settings, name: str | None) -> TargetConfig | None:
    return next((t for t in settings.timeseries.targets if t.name == name), None)


def target_section(settings: Settings, fit_path: Path, night: str, library: ChartLibrary) -> str:
    """The HTML of one target's section, from its ``*_fit.json`` and the products beside it."""
    fit = json.loads(fit_path.read_text())
    folder = fit_path.parent
    stem = fit_path.name.removesuffix("_fit.json")
    name = str(fit.get("target") or stem)
    parts = [f"<h2 id='target-{html.escape(stem)}'>{html.escape(name)}</h2>"]
    parts.append("<h3>Light curve</h3>")
    parts.append(_image(folder / f"{stem}_fit.png", f"{name} light curve and fit"))
    if library.script is not None:
        parts.append(light_curve_charts(folder / f"{stem}.csv", fit, f"chart-{stem}"))
    else:
        parts.append(f"<p class='note'>{html.escape(str(library.missing))}</p>")
    parts.append("<h3>Fitted parameters</h3>")
    parts.append(table_html(parameter_rows(fit, _target_config(settings, name))))
    field = fit.get("field") or {}
    parts.append("<h3>The field</h3>")
    uri, caption = field_figure(field, name)
    if uri is not None:
        parts.append(f"<figure><img src='{uri}' alt='{html.escape(name)} field'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
    else:
        parts.append(f"<p class='empty'>{html.escape(caption)}</p>")
    parts.append("<h3>Comparison stars</h3>")
    if field:
        tables = settings.paths.output / "tables" / night
        parts.append(comparison_table(field, tables))
        compact = compact_comparisons(folder / f"{stem}.csv", field)
        if compact is not None:
            parts.append(f"<figure><img src='{compact}' alt='best comparison stars'></figure>")
    else:
        parts.append("<p class='empty'>no comparison-star record in this fit (rebuild the light curve)</p>")
    parts.append("<h3>Aperture: the curve of growth</h3>")
    parts.append(aperture_section(fit.get("meta") or {}))
    parts.append("<h3>Diagnostics</h3>")
    parts.append(
        _image(folder / f"{stem}_diagnostics.png", "detrending vectors", "airmass, FWHM, sky, centroid")
    )
    parts.append(_image(folder / f"{stem}_corner.png", "posterior", "the posterior of the fit (corner plot)"))
    return "<section class='target'>" + "".join(parts) + "</section>"


def target_sections(settings: Settings, night: str, library: ChartLibrary) -> str:
    """Every target's section of the night (a note when there is none)."""
    folder = settings.paths.output / "lightcurves" / night
    fits = sorted(folder.glob("*_fit.json")) if folder.is_dir() else []
    if not fits:
        return "<p class='empty'>no transit fit this night (no target configured, or no period)</p>"
    return "".join(target_section(settings, path, night, library) for path in fits)
