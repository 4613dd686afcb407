"""The report's field figure: the light curve's reference frame with the target, the comparison
stars and the best rejected candidates drawn as AstroImageJ shows them (aperture circle, the sky
annulus as two dashed circles, a label: T1 green, C2... red, rejected grey)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nightpipe.errors import NightpipeError
from nightpipe.report.embed import figure_data_uri

TARGET_COLOUR, COMPARISON_COLOUR, REJECTED_COLOUR = "#1fbf3f", "#e8312f", "#9a9a9a"


def _rings(ax: Any, x: float, y: float, radius: float, annulus: list[float] | None, colour: str) -> None:
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), radius, fill=False, color=colour, lw=1.0))
    for r in annulus or ():
        ax.add_patch(Circle((x, y), r, fill=False, color=colour, lw=0.6, ls="--"))


def field_figure(field: dict[str, Any], title: str) -> tuple[str | None, str]:
    """A PNG ``data:`` URI of the drawn field (or None) and a caption saying what is drawn or why not."""
    frame = field.get("reference_frame")
    target = field.get("target") or {}
    if not frame or target.get("x") is None:
        return None, "no reference frame recorded for this light curve (rebuild it to draw the field)"
    path = Path(str(frame))
    if not path.is_file():
        return None, f"the reference frame {path.name} is no longer on disk"
    from nightpipe.frames.fitsio import read_image

    try:
        data, _header = read_image(path)
    except (NightpipeError, OSError) as exc:
        return None, f"the reference frame {path.name} could not be read: {exc}"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import ZScaleInterval

    image = np.asarray(data, dtype=float)
    lo, hi = ZScaleInterval().get_limits(image[np.isfinite(image)])
    ny, nx = image.shape
    fig, ax = plt.subplots(figsize=(8.0, 8.0 * ny / nx + 0.4))
    ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    radius = float(field.get("aperture_px") or 3.0)
    annulus = field.get("annulus_px")
    for star in field.get("rejected") or ():
        if star.get("x") is not None:
            ax.plot(star["x"] - 1, star["y"] - 1, "x", color=REJECTED_COLOUR, ms=5, mew=0.8)
    for star in field.get("comparisons") or ():
        if star.get("x") is None:
            continue
        x, y = star["x"] - 1, star["y"] - 1  # FITS pixels (1-based) onto the array
        _rings(ax, x, y, radius, annulus, COMPARISON_COLOUR)
        ax.annotate(star["label"], (x, y), xytext=(5, 5), textcoords="offset points",
                    color=COMPARISON_COLOUR, fontsize=7)  # fmt: skip
    tx, ty = target["x"] - 1, target["y"] - 1
    _rings(ax, tx, ty, radius, annulus, TARGET_COLOUR)
    ax.annotate("T1", (tx, ty), xytext=(6, 6), textcoords="offset points", color=TARGET_COLOUR,
                fontsize=9, fontweight="bold")  # fmt: skip
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(f"{title} on {path.name}", fontsize=10)
    rings = f"aperture {radius:.1f} px" + (
        f", sky annulus {annulus[0]:.1f}-{annulus[1]:.1f} px" if annulus and len(annulus) == 2 else ""
    )
    caption = (
        f"T1 the target (green), C2... the {len(field.get('comparisons') or ())} comparison stars (red), "
        f"x the best rejected candidates (grey); {rings}; the light curve's reference frame {path.name}."
    )
    return figure_data_uri(fig, dpi=72), caption
