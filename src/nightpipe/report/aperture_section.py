"""The chosen aperture in the report: the target's curve of growth over the night (the fraction
of the largest aperture's flux each aperture holds, out of transit) beside each aperture's
out-of-transit scatter, the chosen one marked, so a reader sees whether the aperture that won on
scatter still holds the star's light (issue 25: an aperture of 1-1.5 FWHM in seeing that peaks with
the transit loses flux exactly when the transit is on)."""

from __future__ import annotations

import html
import math
from typing import Any

from nightpipe.report.embed import table_html


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def aperture_rows(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per aperture radius from a fit summary's ``meta``: radius (px), the fraction of
    the flux of the largest aperture (the curve of growth), the out-of-transit scatter (%) and
    ``chosen`` marking the aperture of the light curve. Empty when the meta has no radii.

    >>> rows = aperture_rows({"aperture_radii_px": [2.0, 4.0], "aperture_growth": [0.7, 1.0],
    ...                       "aperture_scatter": [0.004, 0.005], "aperture_px": 2.0})
    >>> [(r["radius (px)"], r["flux / largest"], r["chosen"]) for r in rows]
    [(2.0, 0.7, 'chosen'), (4.0, 1.0, '')]
    """
    radii = [_number(r) for r in meta.get("aperture_radii_px") or []]
    growth = list(meta.get("aperture_growth") or [])
    scatter = list(meta.get("aperture_scatter") or [])
    chosen = _number(meta.get("aperture_px"))
    rows = []
    for k, radius in enumerate(radii):
        g = _number(growth[k]) if k < len(growth) else None
        s = _number(scatter[k]) if k < len(scatter) else None
        rows.append(
            {
                "radius (px)": radius,
                "flux / largest": None if g is None else round(g, 4),
                "scatter out of transit (%)": None if s is None else round(100 * s, 4),
                "chosen": "chosen" if chosen is not None and radius == chosen else "",
            }
        )
    return rows


def aperture_section(meta: dict[str, Any]) -> str:
    """The HTML of the aperture's curve of growth (a note when the fit has no aperture record)."""
    rows = aperture_rows(meta)
    if not rows:
        return "<p class='empty'>no aperture record in this fit (rebuild the light curve)</p>"
    chosen = next((r for r in rows if r["chosen"]), None)
    note = ""
    if chosen is not None and chosen["flux / largest"] is not None:
        factor = _number(meta.get("aperture_fwhm_factor"))
        size = f" ({factor:.2g} x FWHM)" if factor is not None else ""
        note = (
            f"<p>The chosen aperture{html.escape(size)} holds {100 * chosen['flux / largest']:.1f} % "
            "of the largest aperture's flux (median out of transit); the rule: "
            f"{html.escape(str(meta.get('aperture_rule') or 'lowest out-of-transit scatter'))}.</p>"
        )
    return note + table_html(rows)
