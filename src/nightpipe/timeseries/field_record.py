"""What the report needs to draw a target's field and list its comparison stars: the reference
frame, the target's and each comparison's place (pixels of the reference frame and sky), their
weights, scatter and the reasons the best rejected candidates were left out.

Written into the fit JSON (``field``) by the light-curve step; read by ``report/field_figure.py``
and ``report/comparison_table.py``.
"""

from __future__ import annotations

import math
from typing import Any

from nightpipe.timeseries.assemble import Assembled

REJECTED_SHOWN = 10  # the best-scored rejected candidates listed beside the comparison stars


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(float(value)) else None


def _star(built: Assembled, star: int) -> dict[str, Any]:
    matrix = built.matrix
    return {
        "star": int(star),
        "x": _num(matrix.ref_x[star]),
        "y": _num(matrix.ref_y[star]),
        "ra": _num(matrix.ref_ra[star]),
        "dec": _num(matrix.ref_dec[star]),
    }


def field_record(built: Assembled, names: list[str]) -> dict[str, Any]:
    """The ``field`` block of the fit JSON (plain data, JSON-ready).

    ``names`` are the comparison stars' catalogue names, in the order of ``built.comparisons.stars``.
    """
    choice = built.comparisons
    by_star = {c.star: c for c in choice.candidates}
    comparisons = []
    for k, star in enumerate(choice.stars):
        row = _star(built, int(star))
        cand = by_star.get(int(star))
        row.update(
            label=f"C{k + 2}",
            name=names[k] if k < len(names) else None,
            weight=float(choice.weights[k]),
            scatter=None if cand is None else _num(cand.components.get("scatter", math.nan)),
            dmag=None if cand is None else _num(cand.components.get("dmag", math.nan)),
            score=None if cand is None else float(cand.score),
        )
        comparisons.append(row)
    rejected = sorted((c for c in choice.candidates if not c.used), key=lambda c: -c.score)
    rows = []
    for cand in rejected[:REJECTED_SHOWN]:
        row = _star(built, cand.star)
        row.update(
            score=float(cand.score),
            scatter=_num(cand.components.get("scatter", math.nan)),
            dmag=_num(cand.components.get("dmag", math.nan)),
            reasons=list(cand.reasons) or ["spare: scored below the stars used"],
        )
        rows.append(row)
    return {
        "reference_frame": built.lc.meta.get("reference_frame"),
        "target": _star(built, built.target_star),
        "comparisons": comparisons,
        "rejected": rows,
        "candidates": len(choice.candidates),
        "aperture_px": built.lc.meta.get("aperture_px"),
        "annulus_px": built.lc.meta.get("annulus_px"),
    }
