"""Each master frame as a colour image with a colour bar and its statistics (PNG)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from astropy.stats import mad_std

from nightpipe.frames.fitsio import atomic_path, open_fits

log = logging.getLogger(__name__)


def image_statistics(data: np.ndarray) -> dict[str, float]:
    """Median, MAD standard deviation, min, max and the 1/99 percentiles of the finite pixels.

    Examples
    --------
    >>> import numpy as np
    >>> image_statistics(np.arange(101.0))["median"]
    50.0
    """
    finite = np.asarray(data, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {k: float("nan") for k in ("median", "mad_std", "min", "max", "p1", "p99")}
    p1, p99 = np.percentile(finite, [1, 99])
    return {
        "median": float(np.median(finite)),
        "mad_std": float(mad_std(finite)),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "p1": float(p1),
        "p99": float(p99),
    }


def plot_master(path: Path | str, out: Path | str, *, max_pixels: int = 1024) -> Path:
    """Draw the master at ``path`` as a colour image with a colour bar and statistics into ``out``.

    The image is shown between its 1st and 99th percentiles, block-averaged down to at most
    ``max_pixels`` per side; the title gives kind, frames, level and noise. Written atomically.
    """
    from matplotlib.figure import Figure  # not pyplot: no backend or GUI machinery to import

    path, out = Path(path), Path(out)
    with open_fits(path) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        header = hdul[0].header.copy()
        mask = hdul["MASK"].data if "MASK" in hdul else None
        nmask = int(np.count_nonzero(mask)) if mask is not None else 0
    stats = image_statistics(data)
    shown = _downsample(data, max_pixels)
    fig = Figure(figsize=(7.5, 6.0), dpi=100)
    ax = fig.subplots()
    image = ax.imshow(shown, origin="lower", cmap="viridis", vmin=stats["p1"], vmax=stats["p99"])
    fig.colorbar(image, ax=ax, label=str(header.get("BUNIT") or "value"))
    kind = header.get("NPKIND", "master")
    ax.set_title(f"{kind}: {path.name}", fontsize=9)
    text = (
        f"frames {header.get('NCOMBINE', '?')}   median {stats['median']:.4g}   "
        f"MAD std {stats['mad_std']:.3g}   min {stats['min']:.4g}   max {stats['max']:.4g}   "
        f"flagged px {nmask}"
    )
    ax.set_xlabel(text, fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return out


def _downsample(data: np.ndarray, max_pixels: int) -> np.ndarray:
    factor = max(1, int(np.ceil(max(data.shape) / max_pixels)))
    if factor == 1:
        return data
    ny, nx = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    blocks = data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks without data stay NaN
        return np.asarray(np.nanmean(blocks, axis=(1, 3)))
