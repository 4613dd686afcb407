"""Plots of the photometric calibration: catalogue vs instrumental, zero point vs airmass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nightpipe.calphot.frame import FrameCalibration
from nightpipe.frames.fitsio import atomic_path


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_catalog_vs_instrumental(cal: FrameCalibration, destination: Path, *, title: str = "") -> Path:
    """Catalogue magnitude against instrumental magnitude, with the fit and the rejected stars."""
    plt = _pyplot()
    inst = cal.inst_mag[cal.fit_sources]
    cat = cal.reference.mag[cal.fit_refs]
    used = cal.fit.used
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(inst[used], cat[used], "o", ms=4, label=f"used ({used.sum()})")
    ax.plot(inst[~used], cat[~used], "x", color="C3", ms=6, label=f"rejected ({(~used).sum()})")
    xs = np.linspace(np.nanmin(inst), np.nanmax(inst), 2)
    ax.plot(
        xs,
        xs + cal.fit.zero_point,
        "k-",
        label=f"ZP = {cal.fit.zero_point:.3f} ± {cal.fit.zero_point_err:.3f}",
    )
    ax.set_ylabel(f"catalogue {cal.reference.band} ({cal.reference.source})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    axr.plot(inst[used], cal.fit.residuals[used], "o", ms=3)
    axr.plot(inst[~used], cal.fit.residuals[~used], "x", color="C3", ms=5)
    axr.axhline(0, color="k", lw=0.8)
    axr.set_xlabel(f"instrumental magnitude (aperture {cal.aperture_px:.1f} px)")
    axr.set_ylabel("residual")
    axr.grid(alpha=0.3)
    fig.suptitle(title or "zero point")
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return destination


def plot_zero_point_vs_airmass(
    airmass: np.ndarray,
    zp: np.ndarray,
    zp_err: np.ndarray,
    destination: Path,
    *,
    k: float | None = None,
    zp0: float | None = None,
    title: str = "",
) -> Path:
    """The frames' zero points against airmass over the night, with the extinction line when fitted."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(airmass, zp, yerr=zp_err, fmt="o", ms=3, lw=0.8)
    if k is not None and zp0 is not None and np.isfinite(airmass).any():
        xs = np.linspace(np.nanmin(airmass), np.nanmax(airmass), 2)
        ax.plot(xs, zp0 - k * xs, "k-", label=f"k = {k:.3f} mag/airmass")
        ax.legend()
    ax.set_xlabel("airmass")
    ax.set_ylabel("zero point (mag)")
    ax.grid(alpha=0.3)
    ax.set_title(title or "zero point over the night")
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return destination
