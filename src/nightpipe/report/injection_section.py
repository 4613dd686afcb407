"""The report's "Injection-recovery" section: how well each fitted target's night could measure a
transit (the ``lightcurves/<night>/<target>_injection.json`` products of
:mod:`nightpipe.timeseries.injection`): recovered against injected depth and mid-time, their
spread and mean reported error, and the shallowest depth detected."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from nightpipe.report.embed import table_html

SUFFIX = "_injection.json"


def _pct(value: Any, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{100 * float(value):.{digits}f} %"


def _minutes(value: Any) -> str:
    return "-" if value is None or not math.isfinite(float(value)) else f"{float(value):.2f} min"


def _target_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in result.get("injections", []):
        rows.append(
            {
                "injected depth": _pct(t["depth_injected"]),
                "recovered depth": f"{_pct(t['depth'])} ± {_pct(t['depth_err'])}",
                "mid-time offset": _minutes(1440.0 * (t["tc"] - t["tc_injected"])),
                "mid-time error": _minutes(1440.0 * t["tc_err"]),
            }
        )
    return rows


def injection_section(output: Path, night: str) -> str:
    """The HTML of the section (a short note when no night's fit has an injection product)."""
    files = sorted((output / "lightcurves" / night).glob(f"*{SUFFIX}"))
    if not files:
        return "<p class='empty'>no injection-recovery (no fitted transit on this night)</p>"
    parts = []
    for path in files:
        result = json.loads(path.read_text())
        name = path.name[: -len(SUFFIX)]
        shallowest = result.get("shallowest_detected_depth")
        limit = "none detected" if shallowest is None else _pct(shallowest)
        if shallowest is not None and not result.get("ladder_complete"):
            limit = f"below {limit} (the shallowest tried)"
        parts.append(f"<h3>{html.escape(name)}</h3>")
        parts.append(f"<p>{html.escape(str(result.get('method', '')))}.</p>")
        parts.append(
            "<p>"
            f"expected depth {_pct(result.get('expected_depth'))}; recovered minus injected depth: "
            f"mean {_pct(result.get('depth_bias'))}, spread {_pct(result.get('depth_spread'))} "
            f"(mean reported error {_pct(result.get('depth_err_mean'))}); mid-time: mean "
            f"{_minutes(result.get('tc_bias_min'))}, spread {_minutes(result.get('tc_spread_min'))} "
            f"(mean reported error {_minutes(result.get('tc_err_mean_min'))}); shallowest depth "
            f"detected at {result.get('detection_sigma', 3):g} sigma: {html.escape(limit)}."
            "</p>"
        )
        parts.append(table_html(_target_rows(result)))
    return "".join(parts)
