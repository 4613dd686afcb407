"""The report's comparison stars of one target: a table (identifier, coordinates, catalogue
magnitude, weight, scatter, why chosen or rejected) and a compact figure of the best few, each
against the ensemble of the others (the light-curve CSV's ``rel_flux_C*`` columns)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from nightpipe.report.embed import figure_data_uri, table_html

BEST_SHOWN = 5  # comparison stars drawn in the compact figure


def _sexagesimal(ra: float | None, dec: float | None) -> tuple[str, str]:
    if ra is None or dec is None:
        return "", ""
    from astropy.coordinates import Angle

    ra_text = Angle(ra, unit="deg").to_string(unit="hour", sep=":", precision=2, pad=True)
    dec_text = Angle(dec, unit="deg").to_string(unit="deg", sep=":", precision=1, alwayssign=True, pad=True)
    return str(ra_text), str(dec_text)


def catalogue_magnitudes(tables: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The zero-point step's matched catalogue stars of the night (``sources.csv``): the band, and
    the catalogue RA, Dec and magnitude of each (empty without the file)."""
    path = tables / "sources.csv"
    empty = np.empty(0)
    if not path.is_file():
        return "", empty, empty, empty
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        band = next((c.removeprefix("CMAG_") for c in reader.fieldnames or () if c.startswith("CMAG_")), "")
        seen: dict[str, tuple[float, float, float]] = {}
        for row in reader:
            try:
                values = (float(row["RA_C"]), float(row["DEC_C"]), float(row[f"CMAG_{band}"]))
            except (KeyError, ValueError):
                continue
            if all(math.isfinite(v) for v in values):
                seen.setdefault(row.get("id") or f"{values[0]:.5f}{values[1]:+.5f}", values)
    cat = np.array(list(seen.values()), dtype=float).reshape(-1, 3)
    return band, cat[:, 0], cat[:, 1], cat[:, 2]


def _magnitude(star: dict[str, Any], cat: tuple[str, np.ndarray, np.ndarray, np.ndarray]) -> str:
    band, ra, dec, mag = cat
    if not ra.size or star.get("ra") is None:
        return ""
    cos = math.cos(math.radians(star["dec"]))
    sep = np.hypot((ra - star["ra"]) * cos, dec - star["dec"]) * 3600.0
    k = int(np.argmin(sep))
    return f"{mag[k]:.2f} {band}" if sep[k] < 5.0 else ""


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def comparison_rows(field: dict[str, Any], tables: Path) -> list[dict[str, Any]]:
    """One row per comparison star (used first, by weight), then the best rejected candidates."""
    cat = catalogue_magnitudes(tables)
    rows = []
    comparisons = sorted(field.get("comparisons") or (), key=lambda s: -float(s.get("weight") or 0))
    for star in comparisons:
        ra, dec = _sexagesimal(star.get("ra"), star.get("dec"))
        rows.append(
            {
                "label": star.get("label"),
                "identifier": star.get("name") or "",
                "RA": ra,
                "Dec": dec,
                "catalogue mag": _magnitude(star, cat),
                "weight": f"{float(star.get('weight') or 0):.3f}",
                "scatter %": _percent(star.get("scatter")),
                "Δmag from target": "" if star.get("dmag") is None else f"{star['dmag']:+.2f}",
                "why": f"used: score {float(star.get('score') or 0):.2f}",
            }
        )
    for star in field.get("rejected") or ():
        ra, dec = _sexagesimal(star.get("ra"), star.get("dec"))
        rows.append(
            {
                "label": "",
                "identifier": "",
                "RA": ra,
                "Dec": dec,
                "catalogue mag": _magnitude(star, cat),
                "weight": "0",
                "scatter %": _percent(star.get("scatter")),
                "Δmag from target": "" if star.get("dmag") is None else f"{star['dmag']:+.2f}",
                "why": "rejected: " + "; ".join(star.get("reasons") or ()),
            }
        )
    return rows


def comparison_table(field: dict[str, Any], tables: Path) -> str:
    """The HTML table, with a line on how many candidates there were."""
    n = len(field.get("comparisons") or ())
    shown = len(field.get("rejected") or ())
    note = (
        f"<p>{n} comparison stars used of {field.get('candidates', '?')} candidates; the {shown} best "
        "rejected candidates follow them. Weights: Broeg et al. (2005), 1/σ² against the others.</p>"
    )
    return note + table_html(comparison_rows(field, tables), limit=200)


def compact_comparisons(csv_path: Path, field: dict[str, Any]) -> str | None:
    """A ``data:`` URI of the best few comparison stars against the ensemble of the others."""
    comps = sorted(field.get("comparisons") or (), key=lambda s: -float(s.get("weight") or 0))[:BEST_SHOWN]
    if not comps or not csv_path.is_file():
        return None
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or f"rel_flux_{comps[0]['label']}" not in rows[0]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time = np.array([float(r["BJD_TDB"]) for r in rows])
    hours = (time - time[0]) * 24.0
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * len(comps)))
    for k, star in enumerate(comps):
        values = np.array([float(r[f"rel_flux_{star['label']}"] or "nan") for r in rows])
        values = values / np.nanmedian(values)
        offset = -0.03 * k
        ax.plot(hours, values + offset, ".", ms=2.5)
        sd = 100 * float(np.nanstd(values))
        ax.text(hours[-1], 1 + offset, f"  {star['label']} ({sd:.2f} %)", va="center", fontsize=7)
    ax.set_xlabel("hours from the first frame")
    ax.set_ylabel("flux / others (offset 3 %)")
    ax.set_title(
        f"the {len(comps)} comparison stars of highest weight, each against the ensemble of the others"
    )
    ax.set_xlim(hours[0], hours[-1] + 0.18 * (hours[-1] - hours[0] or 1))
    return figure_data_uri(fig, dpi=80)
