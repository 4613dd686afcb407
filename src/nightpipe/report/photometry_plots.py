"""Photometry plots: seeing profile with its fitted model, curve of growth, a frame with apertures.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot state) and written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from nightpipe.frames.fitsio import atomic_path
from nightpipe.photometry.measure import FrameMeasurement
from nightpipe.photometry.profiles import ProfileFit, curve_of_growth, fit_profile, radial_profile

log = logging.getLogger(__name__)


def _save(fig: Figure, destination: Path) -> Path:
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return destination


def plot_seeing_profile(
    image: np.ndarray,
    x: float,
    y: float,
    destination: Path,
    *,
    fit: ProfileFit | None = None,
    radii: np.ndarray | None = None,
    annulus: tuple[float, float] | None = None,
    title: str = "",
) -> Path:
    """Radial profile of one star (background-subtracted image) with the fitted model and FWHM.

    Parameters
    ----------
    image
        Background-subtracted image.
    x, y
        The star.
    destination
        PNG file.
    fit
        A fitted profile (default: a Moffat fitted to this star).
    radii, annulus
        Apertures and sky annulus to draw, pixels.
    title
        Figure title.
    """
    if fit is None:
        fit = fit_profile(image, np.array([x]), np.array([y]))
    rmax = max(3.0 * fit.fwhm, annulus[1] if annulus else 0.0, 8.0)
    prof = radial_profile(image, x, y, rmax)
    model: Literal["moffat", "gaussian"] = "gaussian" if fit.model == "gaussian" else "moffat"
    one = fit_profile(image, np.array([x]), np.array([y]), fwhm_guess=fit.fwhm, model=model)
    amp = float(one.amplitudes[0])
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    ax.plot(prof.r, prof.value, ".", ms=3, alpha=0.5, color="0.4", label="pixels")
    ax.plot(prof.bin_r, prof.bin_mean, "o", ms=4, color="k", label="azimuthal mean")
    rr = np.linspace(0, rmax, 300)
    ax.plot(rr, fit.evaluate(rr, amp), "-", color="tab:red", label=f"{fit.model} fit")
    ax.axvline(fit.fwhm / 2, color="tab:red", ls=":", label=f"HWHM (FWHM {fit.fwhm:.2f} px)")
    ax.axhline(amp / 2, color="tab:red", ls=":", lw=0.8)
    if radii is not None:
        for r in radii:
            ax.axvline(r, color="tab:blue", lw=0.8, alpha=0.7)
    if annulus is not None:
        ax.axvspan(annulus[0], annulus[1], color="tab:green", alpha=0.15, label="sky annulus")
    ax.set_xlabel("radius (px)")
    ax.set_ylabel("background-subtracted value")
    ax.set_xlim(0, rmax)
    ax.set_title(title or f"seeing profile at ({x:.1f}, {y:.1f})")
    ax.legend(fontsize=8)
    return _save(fig, destination)


def plot_curve_of_growth(
    image: np.ndarray,
    x: float,
    y: float,
    destination: Path,
    *,
    aperture: float | None = None,
    annulus: tuple[float, float] | None = None,
    rmax: float = 20.0,
    title: str = "",
) -> Path:
    """Cumulative flux against radius for one star, with the chosen aperture and annulus marked."""
    radii = np.linspace(0.5, rmax, 60)
    cog = curve_of_growth(image, x, y, radii)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    norm = cog[-1] if cog[-1] != 0 else 1.0
    ax.plot(radii, cog / norm, "-o", ms=3, color="k")
    if aperture is not None:
        ax.axvline(aperture, color="tab:blue", label=f"aperture {aperture:.1f} px")
    if annulus is not None:
        ax.axvspan(annulus[0], annulus[1], color="tab:green", alpha=0.15, label="sky annulus")
    ax.set_xlabel("radius (px)")
    ax.set_ylabel(f"flux / flux({rmax:.0f} px)")
    ax.set_title(title or f"curve of growth at ({x:.1f}, {y:.1f})")
    ax.legend(fontsize=8)
    return _save(fig, destination)


def plot_frame_apertures(
    data: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    destination: Path,
    *,
    radius: float,
    annulus: tuple[float, float] | None = None,
    flags: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """The frame (z-scaled) with the apertures (and annuli) of its sources drawn."""
    from astropy.visualization import ZScaleInterval
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle

    finite = np.isfinite(data)
    vmin, vmax = ZScaleInterval().get_limits(data[finite]) if finite.any() else (0.0, 1.0)
    ny, nx = data.shape
    fig = Figure(figsize=(8, 8 * ny / nx + 0.5))
    ax = fig.add_subplot()
    ax.imshow(data, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    clean = np.ones(x.size, bool) if flags is None else flags == 0
    for sel, colour in ((clean, "tab:cyan"), (~clean, "tab:orange")):
        circles = [Circle((xi, yi), radius) for xi, yi in zip(x[sel], y[sel], strict=True)]
        ax.add_collection(PatchCollection(circles, facecolor="none", edgecolor=colour, lw=0.6))
        if annulus is not None:
            for r in annulus:
                rings = [Circle((xi, yi), r) for xi, yi in zip(x[sel], y[sel], strict=True)]
                ax.add_collection(
                    PatchCollection(rings, facecolor="none", edgecolor=colour, lw=0.3, alpha=0.5)
                )
    ax.set_title(title or f"{x.size} sources (orange: flagged)")
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    return _save(fig, destination)


def plot_frame_photometry(
    path: Path | str, meas: FrameMeasurement, folder: Path, *, star: int | None = None
) -> list[Path]:
    """The three plots of one measured frame; ``star`` (index) defaults to the brightest clean source.

    Returns the written PNG paths.
    """
    from nightpipe.photometry.step import read_frame

    image = read_frame(path)
    sub = image.data - meas.background.level
    det = meas.detections
    if star is None:
        clean = np.flatnonzero(det.flags == 0)
        star = int(clean[0]) if clean.size else 0
    stem = Path(path).name.split(".")[0]
    x, y = float(det.x[star]), float(det.y[star])
    chosen = float(meas.radii[len(meas.radii) // 2])
    out = [
        plot_seeing_profile(
            sub,
            x,
            y,
            folder / f"{stem}_profile.png",
            fit=meas.profile,
            radii=meas.radii,
            annulus=meas.annulus,
        ),
        plot_curve_of_growth(
            sub,
            x,
            y,
            folder / f"{stem}_growth.png",
            aperture=chosen,
            annulus=meas.annulus,
            rmax=max(20.0, meas.annulus[1] + 2 if meas.annulus else 20.0),
        ),
        plot_frame_apertures(
            image.data,
            det.x,
            det.y,
            folder / f"{stem}_apertures.png",
            radius=chosen,
            annulus=meas.annulus,
            flags=det.flags | meas.photometry.flags,
        ),
    ]
    return out
