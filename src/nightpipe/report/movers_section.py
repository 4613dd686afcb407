"""The night report's moving objects: identified bodies and candidates, with their strips,
rates, directions, magnitudes and O-C (from ``movers/<night>/tracks.ecsv``)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from astropy.table import Table

from nightpipe.movers.strips import safe_name
from nightpipe.report.embed import png_data_uri


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def movers_section(output: Path, night: str) -> str:
    """The HTML of the section (a short note when the movers step has not run)."""
    folder = output / "movers" / night
    table_file = folder / "tracks.ecsv"
    if not table_file.is_file():
        return (
            "<p class='empty'>no moving-object search (movers.enabled is false or the step did not run)</p>"
        )
    tracks = Table.read(table_file, format="ascii.ecsv")
    if not len(tracks):
        return "<p class='empty'>no moving object found</p>"
    head = ["object", "status", "detections", 'rate ("/min)', "direction (deg E of N)", "mag"]
    head += ['O-C RA (")', 'O-C Dec (")', "strip"]
    rows = []
    for row in tracks:
        name = str(row["designation"])
        strip = folder / "strips" / f"{safe_name(name)}.png"
        image = (
            f"<img src='{png_data_uri(strip)}' alt='strip of {html.escape(name)}'>" if strip.is_file() else ""
        )
        source = str(row["source"]) if "source" in row.colnames else ""
        status = f"identified ({source})" if row["identified"] else "candidate"
        oc = [row[c] if c in row.colnames else np.nan for c in ("oc_ra_arcsec", "oc_dec_arcsec")]
        cells = [html.escape(name), status, str(int(row["n"])), _cell(float(row["rate_arcsec_min"]), 2)]
        cells += [_cell(float(row["position_angle_deg"]), 1), _cell(float(row["mag"]), 2)]
        cells += [_cell(float(oc[0]), 2), _cell(float(oc[1]), 2), image]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    known = int(np.sum(tracks["identified"]))
    summary = f"<p>{known} identified, {len(tracks) - known} candidates</p>"
    body = "".join(rows)
    return f"{summary}<table class='movers'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
