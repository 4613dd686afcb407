"""Helpers to embed figures and files in a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any


def png_data_uri(path: Path) -> str:
    """A ``data:`` URI of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def figure_data_uri(figure: Any, *, dpi: int = 100) -> str:
    """A ``data:`` URI of a matplotlib figure rendered as PNG (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table_html(rows: list[dict[str, Any]], columns: list[str] | None = None, *, limit: int = 500) -> str:
    """An HTML table of dict rows (escaped); at most ``limit`` rows, with a note when cut."""
    if not rows:
        return "<p class='empty'>none</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows[:limit]:
        cells = "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    more = f"<p>{len(rows) - limit} more rows not shown</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
