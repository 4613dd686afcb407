"""Plots of a light curve and its fit (matplotlib, object API, no global pyplot state).

- :func:`plot_fit`: detrended light curve with the model, unbinned and binned, and residuals;
- :func:`plot_comparisons`: leave-one-out curves of the comparison stars and the target;
- :func:`plot_diagnostics`: airmass, FWHM, sky and centroid against time;
- :func:`plot_corner`: the posterior (histograms and pairwise densities).
Every function writes a PNG atomically and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nightpipe.frames.fitsio import atomic_path
from nightpipe.timeseries.lightcurve import LightCurve, bin_arrays
from nightpipe.timeseries.transit import TransitFit


def _save(fig: Figure, path: Path | str, *, tight: bool = True) -> Path:
    """Write the figure as PNG; ``tight=False`` for figures laid out by hand (a tight bounding
    box draws the figure twice, which costs a corner plot half its time)."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight" if tight else None)
    return path


def _hours(time: np.ndarray, ref: float) -> np.ndarray:
    return (time - ref) * 24.0


def plot_fit(fit: TransitFit, path: Path | str, *, bin_minutes: float = 10.0) -> Path:
    """Detrended light curve with the transit model and the residuals, unbinned and binned."""
    tc = fit.params["tc"].median
    t = fit.lc.time[fit.used]
    f = fit.detrended_flux
    model = fit.transit_model
    resid = f - model
    err = fit.lc.flux_err[fit.used] / fit.systematics
    bt, bf, be, _, _ = bin_arrays(t, f, err, bin_minutes)
    _, br, bre, _, _ = bin_arrays(t, resid, err, bin_minutes)
    fig = Figure(figsize=(8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = _hours(t, tc)
    top.plot(x, f, ".", color="0.6", ms=3, label="detrended flux")
    top.errorbar(_hours(bt, tc), bf, be, fmt="o", color="k", ms=4, label=f"{bin_minutes:g}-min bins")
    order = np.argsort(x)
    top.plot(x[order], model[order], "r-", lw=1.5, label="model")
    rp = fit.params["rp_rs"]
    top.set_title(
        f"{fit.lc.meta.get('target') or 'target'}: Rp/Rs = {rp.median:.4f} ± {rp.err:.4f}, "
        f"rms {100 * fit.rms:.2f} %"
    )
    top.set_ylabel("relative flux")
    top.legend(loc="lower left", fontsize=8)
    bottom.plot(x, resid, ".", color="0.6", ms=3)
    bottom.errorbar(_hours(bt, tc), br, bre, fmt="o", color="k", ms=4)
    bottom.axhline(0, color="r", lw=1)
    bottom.set_xlabel(f"hours from mid-transit ({fit.lc.time_scale} {tc:.5f})")
    bottom.set_ylabel("residual")
    return _save(fig, path)


def plot_comparisons(
    lc: LightCurve, leave_one_out: np.ndarray, path: Path | str, labels: Sequence[str] = ()
) -> Path:
    """Each comparison's flux over the ensemble of the others (offset for clarity), and the target."""
    n = leave_one_out.shape[1]
    fig = Figure(figsize=(8, 1.5 + 0.6 * (n + 1)))
    ax = fig.subplots()
    x = _hours(lc.time, float(lc.time[0]))
    step = max(0.02, 5 * float(np.nanmedian(np.nanstd(leave_one_out, axis=0))))
    ax.plot(x, lc.flux, ".", ms=3, color="k")
    ax.text(x[-1], float(np.nanmedian(lc.flux)), " target", va="center", fontsize=8)
    for j in range(n):
        offset = -(j + 1) * step
        ax.plot(x, leave_one_out[:, j] + offset, ".", ms=3)
        name = labels[j] if j < len(labels) else f"C{j + 2}"
        sd = 100 * float(np.nanstd(leave_one_out[:, j]))
        ax.text(x[-1], 1 + offset, f" {name} ({sd:.2f} %)", va="center", fontsize=8)
    ax.set_xlabel("hours from the first frame")
    ax.set_ylabel("relative flux (offset)")
    ax.set_title("comparison stars: each against the others")
    return _save(fig, path)


def plot_diagnostics(lc: LightCurve, path: Path | str) -> Path:
    """Airmass, FWHM, sky and centroid shifts against time."""
    names = [k for k in ("airmass", "fwhm", "sky", "x", "y") if k in lc.aux]
    fig = Figure(figsize=(8, 1.2 + 1.4 * max(1, len(names))))
    axes = fig.subplots(max(1, len(names)), 1, sharex=True, squeeze=False)[:, 0]
    x = _hours(lc.time, float(lc.time[0]))
    for ax, name in zip(axes, names, strict=False):
        values = lc.aux[name]
        if name in ("x", "y"):
            values = values - np.nanmedian(values)
            name = f"{name} shift (px)"
        ax.plot(x, values, ".", ms=3)
        ax.set_ylabel(name)
    axes[-1].set_xlabel("hours from the first frame")
    return _save(fig, path)


def plot_corner(samples: np.ndarray, names: Sequence[str], path: Path | str, *, bins: int = 30) -> Path:
    """A corner plot of posterior samples (marginal histograms, pairwise 2-D histograms)."""
    if samples.shape[0] > 8000:  # thin for speed; the shapes do not change
        samples = samples[:: samples.shape[0] // 8000 + 1]
    n = samples.shape[1]
    fig = Figure(figsize=(1.8 * n, 1.8 * n))
    axes = fig.subplots(n, n, squeeze=False)
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(samples[:, i], bins=bins, histtype="step", color="k")
                lo, med, hi = np.percentile(samples[:, i], [15.865, 50, 84.135])
                for v in (lo, med, hi):
                    ax.axvline(v, color="C0", ls="--" if v != med else "-", lw=0.8)
                ax.set_yticks([])
                digits = max(0, min(6, 1 - int(np.floor(np.log10(max(hi - lo, 1e-12) / 2)))))
                ax.set_title(  # every panel names what it shows, as corner.py's show_titles does
                    f"{names[i]} = {med:.{digits}f} +{hi - med:.{digits}f}/-{med - lo:.{digits}f}", fontsize=7
                )
            else:
                ax.hist2d(samples[:, j], samples[:, i], bins=bins, cmap="Greys")
            if i == n - 1:
                ax.set_xlabel(names[j], fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i], fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=6)
    fig.subplots_adjust(left=0.08, bottom=0.08, right=0.98, top=0.95, wspace=0.08, hspace=0.2)
    return _save(fig, path, tight=False)
