"""The field map: the night's stars, and what the services know of them, marked by type."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nightpipe.frames.fitsio import atomic_path

if TYPE_CHECKING:
    from nightpipe.identify.step import Identified

# kind of object -> (marker, colour, label)
STYLES = {
    "variable": ("*", "crimson", "known variable"),
    "simbad": ("s", "royalblue", "SIMBAD object (not a plain star)"),
    "milliquas": ("D", "purple", "quasar / AGN"),
    "colibri": ("X", "green", "transient / event"),
    "skybot": ("o", "darkorange", "solar-system body (track)"),
}
PLAIN_STAR_TYPES = frozenset({"*", "Star", "", "PM*", "**", "HPM*"})


def field_map(found: Identified, destination: Path, night: str) -> Path:
    """Draw the field (RA increasing to the left) and save it as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 7.0))
    cat = found.catalogue
    cosd = np.cos(np.radians(found.sky.centre[1]))
    ax.scatter(cat["ra"], cat["dec"], s=6, c="0.6", lw=0, label=f"stars of the night ({len(cat)})")
    objects = found.objects
    for service in ("simbad", "milliquas", "colibri"):
        part = objects[objects["service"] == service] if len(objects) else objects
        if service == "simbad" and len(part):
            part = part[[str(k).rstrip("?") not in PLAIN_STAR_TYPES for k in part["kind"]]]
        if len(part):
            marker, colour, label = STYLES[service]
            ax.scatter(part["ra"], part["dec"], marker=marker, s=40, facecolors="none", edgecolors=colour,
                       label=f"{label} ({len(part)})")  # fmt: skip
    var = found.variables
    if len(var):
        marker, colour, label = STYLES["variable"]
        ax.scatter(var["ra"], var["dec"], marker=marker, s=140, c=colour, label=f"{label} ({len(var)})")
        for row in var[:15]:
            ax.annotate(str(row["label"]).split(" (")[0], (row["ra"], row["dec"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points", color=colour)  # fmt: skip
    sso = found.solar_system
    if len(sso):
        marker, colour, label = STYLES["skybot"]
        for name in sorted(set(sso["name"])):
            track = sso[sso["name"] == name]
            ax.plot(track["ra"], track["dec"], "-", color=colour, lw=1)
            seen = np.asarray(track["source_index"]) >= 0
            ax.plot(track["ra"][seen], track["dec"][seen], marker, color=colour, ms=3, lw=0)
            ax.annotate(name, (track["ra"][0], track["dec"][0]), fontsize=7, color=colour)
        ax.plot([], [], "-o", color=colour, ms=3, label=f"{label} ({len(set(sso['name']))})")
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    ax.set_aspect(1.0 / cosd)
    ax.invert_xaxis()
    ax.set_title(f"What is in the field, {night}")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return destination
