"""Astrometry plots: a frame with the catalogue stars of its WCS overplotted on the detections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from nightpipe.astrometry.checks import match_to_refs, refs_on_frame
from nightpipe.astrometry.index_catalog import RefStars
from nightpipe.astrometry.sources import StarList
from nightpipe.frames.fitsio import atomic_path


def plot_catalogue_overlay(
    data: np.ndarray,
    wcs: WCS,
    stars: StarList,
    refs: RefStars,
    path: Path,
    *,
    title: str = "",
    radius_px: float = 3.0,
) -> Path:
    """Draw the frame, its detected stars and the reference stars where the WCS puts them.

    Detections are small cyan circles; catalogue stars are red squares, filled in when they
    matched a detection. A second panel shows the residual vectors of the matches, magnified.
    The PNG is written atomically to ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref_xy, _ = refs_on_frame(wcs, refs, stars.shape)
    si, ri, _ = match_to_refs(wcs, stars, refs, radius_px=radius_px)
    matched_xy = (
        np.asarray(wcs.all_world2pix(np.column_stack([refs.ra[ri], refs.dec[ri]]), 0))
        if ri.size
        else np.empty((0, 2))
    )

    finite = data[np.isfinite(data)]
    low, high = np.percentile(finite, [5, 99.5]) if finite.size else (0.0, 1.0)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.35, 1]})
    ax.imshow(data, origin="lower", cmap="gray_r", vmin=low, vmax=high, interpolation="nearest")
    ax.scatter(
        stars.x,
        stars.y,
        s=30,
        facecolors="none",
        edgecolors="tab:cyan",
        linewidths=0.7,
        label=f"detected ({len(stars)})",
    )
    ax.scatter(
        ref_xy[:, 0],
        ref_xy[:, 1],
        s=70,
        marker="s",
        facecolors="none",
        edgecolors="tab:red",
        linewidths=0.9,
        label=f"index stars ({ref_xy.shape[0]})",
    )
    ax.scatter(
        matched_xy[:, 0], matched_xy[:, 1], s=12, marker="s", color="tab:red", label=f"matched ({ri.size})"
    )
    ax.set_xlim(-0.5, data.shape[1] - 0.5)
    ax.set_ylim(-0.5, data.shape[0] - 0.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_title(title, fontsize=9)

    if si.size:
        dx = stars.x[si] - matched_xy[:, 0]
        dy = stars.y[si] - matched_xy[:, 1]
        ax2.quiver(
            matched_xy[:, 0],
            matched_xy[:, 1],
            dx,
            dy,
            angles="xy",
            scale_units="xy",
            scale=1 / 200.0,
            color="tab:red",
        )
        rms = float(np.sqrt(np.mean(dx**2 + dy**2)))
        ax2.set_title(
            f"residuals (detected - catalogue) x200, all matches incl. saturated: RMS {rms:.3f} px",
            fontsize=9,
        )
    ax2.set_xlim(-0.5, data.shape[1] - 0.5)
    ax2.set_ylim(-0.5, data.shape[0] - 0.5)
    ax2.set_aspect("equal")
    ax2.set_xlabel("x (pixels)")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
