"""Interactive charts in the report: uPlot (npm ``uplot``, pinned in web/package.json) inlined in
the page so that the file works offline. Drag to zoom, double-click to reset; hovering a point
shows its frame and values in a line under the chart.

Each chart is a ``<div class='np-chart'>`` holding its data as JSON in a
``<script type='application/json'>`` (no code is built from data; the one script of the page is
:data:`CHART_JS`, a constant). Without the library the report keeps its static PNG figures and
says why the charts are missing.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LIBRARY = "uPlot.iife.min.js"
STYLE = "uPlot.min.css"


@dataclass(frozen=True)
class ChartLibrary:
    """The inlined library (script and style), or why there is none."""

    script: str | None
    style: str
    missing: str | None


def library_folders() -> list[Path]:
    """Where uPlot is looked for: the web app's vendored assets (``make web-assets``), then the
    repository's ``web/node_modules`` (``npm ci`` in ``web/``)."""
    package = Path(__file__).resolve().parents[1]
    return [
        package / "web" / "static" / "vendor",
        package.parents[1] / "web" / "node_modules" / "uplot" / "dist",
    ]


def load_library(folders: Sequence[Path] | None = None) -> ChartLibrary:
    """uPlot's script and style from the first folder that has them."""
    for folder in library_folders() if folders is None else folders:
        script = folder / LIBRARY
        if script.is_file():
            style = folder / STYLE
            return ChartLibrary(
                script.read_text(encoding="utf-8"),
                style.read_text(encoding="utf-8") if style.is_file() else "",
                None,
            )
    return ChartLibrary(
        None,
        "",
        "interactive charts unavailable: uPlot is not installed (run `make web-assets`); "
        "the static figures are shown instead",
    )


def _clean(values: Sequence[Any], digits: int) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        f = None if v is None else float(v)
        out.append(None if f is None or not math.isfinite(f) else round(f, digits))
    return out


@dataclass(frozen=True)
class Series:
    """One series of a chart: values, label, colour, and whether it is drawn as a line."""

    label: str
    values: Sequence[Any]
    color: str
    line: bool = False
    digits: int = 5


def chart_html(
    chart_id: str,
    x: Sequence[float],
    series: Sequence[Series],
    *,
    xlabel: str,
    ylabel: str,
    frames: Sequence[str],
    sync: str,
    height: int = 300,
) -> str:
    """A chart's container and its data (escaped for a ``<script>`` element)."""
    spec = {
        "x": _clean(x, 5),
        "xlabel": xlabel,
        "ylabel": ylabel,
        "frames": [str(f) for f in frames],
        "sync": sync,
        "height": height,
        "series": [
            {"label": s.label, "values": _clean(s.values, s.digits), "color": s.color, "line": s.line}
            for s in series
        ],
    }
    data = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    return (
        f"<div class='np-chart' id='{html.escape(chart_id)}'>"
        f"<script type='application/json' class='np-chart-data'>{data}</script>"
        "<div class='np-plot'></div><p class='np-readout'>hover a point for its frame and values</p></div>"
    )


CHART_JS = r"""
(function () {
  "use strict";
  if (typeof uPlot === "undefined") { return; }
  var syncs = {};
  document.querySelectorAll(".np-chart").forEach(function (box) {
    var spec = JSON.parse(box.querySelector(".np-chart-data").textContent);
    var readout = box.querySelector(".np-readout");
    var series = [{ label: spec.xlabel, value: function (u, v) { return v == null ? "" : v.toFixed(4); } }];
    var columns = [spec.x];
    spec.series.forEach(function (s) {
      columns.push(s.values);
      series.push({
        label: s.label, stroke: s.color, width: s.line ? 2 : 0, spanGaps: s.line,
        points: s.line ? { show: false } : { show: true, size: 5, fill: s.color, stroke: s.color }
      });
    });
    if (!syncs[spec.sync]) { syncs[spec.sync] = uPlot.sync(spec.sync); }
    var show = function (u) {
      var i = u.cursor.idx;
      if (i == null) { return; }
      var parts = [spec.frames[i] || "", spec.xlabel + " " + (spec.x[i] == null ? "" : spec.x[i].toFixed(4))];
      spec.series.forEach(function (s) {
        var v = s.values[i];
        if (v != null) { parts.push(s.label + " " + v); }
      });
      readout.textContent = parts.join(" \u00b7 ");
      readout.setAttribute("data-frame", spec.frames[i] || "");
    };
    new uPlot({
      width: Math.max(400, box.clientWidth || 900), height: spec.height, series: series,
      scales: { x: { time: false } }, legend: { show: true },
      cursor: { sync: { key: syncs[spec.sync].key }, drag: { x: true, y: false }, focus: { prox: 16 } },
      axes: [{ label: spec.xlabel }, { label: spec.ylabel, size: 70 }],
      hooks: { setCursor: [show] }
    }, columns, box.querySelector(".np-plot"));
  });
})();
"""


def page_scripts(library: ChartLibrary) -> str:
    """The ``<style>`` and ``<script>`` elements the charts need (nothing without the library)."""
    if library.script is None:
        return ""
    script = library.script.replace("</script", "<\\/script")
    return f"<style>{library.style}</style><script>{script}</script><script>{CHART_JS}</script>"
