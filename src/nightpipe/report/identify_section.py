"""The report's "What is in the field" section: the field map, known variables, solar-system bodies,
other objects of interest, and which services answered (or why not)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from astropy.table import Table

from nightpipe.report.embed import png_data_uri, table_html

PLAIN_STARS = frozenset({"*", "", "PM*", "HPM*", "**", "Star"})
VARIABLE_COLUMNS = {
    "label": "variable",
    "ra": "RA",
    "dec": "Dec",
    "vsx_period": "period (d)",
    "vsx_range": "range",
    "vsx_sep": 'offset (")',
    "vsx_n": "candidates",
}
BODY_COLUMNS = {
    "name": "name",
    "number": "number",
    "kind": "class",
    "V": "predicted V",
    "n_frames": "frames in field",
    "n_seen": "frames detected",
    "median_offset_arcsec": 'median offset (")',
}
OBJECT_COLUMNS = {"service": "service", "name": "name", "kind": "type", "ra": "RA", "dec": "Dec"}


def _rows(path: Path, columns: dict[str, str], limit: int = 200) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    table = Table.read(path, format="ascii.ecsv")
    rows = []
    for row in table[:limit]:
        rows.append({label: _value(row[col]) for col, label in columns.items() if col in table.colnames})
    return rows


def _value(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    return value.item() if hasattr(value, "item") else value


def identify_section(output: Path, night: str) -> str:
    """The HTML of the section (a short note when the identify step has not run)."""
    folder = output / "identify" / night
    summary_file = folder / "summary.json"
    if not summary_file.is_file():
        return "<p class='empty'>not identified (the identify step did not run on this night)</p>"
    summary = json.loads(summary_file.read_text())
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary.get("service_lines", []))
    parts = [f"<p>Services:</p><ul>{lines}</ul>"]
    field_map = folder / "field_map.png"
    if field_map.is_file():
        parts.append(f"<img src='{png_data_uri(field_map)}' alt='field map' style='max-width:700px'>")
    parts.append(f"<h3>Known variables in the field ({summary.get('known_variables', 0)})</h3>")
    parts.append("<p>These stars are never used as comparison stars.</p>")
    parts.append(table_html(_rows(folder / "variables.ecsv", VARIABLE_COLUMNS)))
    parts.append(f"<h3>Solar-system bodies ({summary.get('solar_system_bodies', 0)})</h3>")
    parts.append(table_html(_rows(folder / "bodies.ecsv", BODY_COLUMNS)))
    everything = _rows(folder / "objects.ecsv", OBJECT_COLUMNS, limit=2000)
    objects = [r for r in everything if str(r.get("type", "")).rstrip("?") not in PLAIN_STARS]
    parts.append(f"<h3>Other objects of interest ({len(objects)})</h3>")
    parts.append(table_html(objects, limit=100))
    return "".join(parts)
