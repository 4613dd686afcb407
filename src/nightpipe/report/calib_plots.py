"""Before/after pictures of calibration: the raw frame beside its calibrated product.

Both panels use the same zscale stretch: each image has its median subtracted and the
same (vmin, vmax) range, found by :class:`astropy.visualization.ZScaleInterval` on the
calibrated frame, so that vignetting, dust and hot pixels removed by the calibration are
visible at the same contrast. A third panel shows the mask plane.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from astropy.visualization import ZScaleInterval
from matplotlib.figure import Figure

from nightpipe.calib.calibrated_io import read_calibrated
from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_path, read_image

log = logging.getLogger(__name__)

_RAW_LINE = re.compile(r"^raw: (?P<path>.+)\[(?P<hdu>\d+)\]$")


def raw_source(history: list[str]) -> tuple[Path, int] | None:
    """The raw file and HDU a calibrated frame was made from (its ``raw:`` HISTORY line).

    Long HISTORY lines are split over several cards; they are joined back first.

    Examples
    --------
    >>> raw_source(["nightpipe 0.1 calibrate", "raw: /data/a b.fits[0]", "bias subtracted"])
    (PosixPath('/data/a b.fits'), 0)
    """
    joined: list[str] = []
    for line in history:
        if joined and len(joined[-1]) % 72 == 0 and not line.startswith(("raw:", "nightpipe")):
            joined[-1] += line
        else:
            joined.append(line)
    for line in joined:
        match = _RAW_LINE.match(line.strip())
        if match:
            return Path(match["path"]), int(match["hdu"])
    return None


def same_stretch(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Median-subtract both images and return them with one zscale range from ``after``."""
    b = before - np.nanmedian(before)
    a = after - np.nanmedian(after)
    finite = a[np.isfinite(a)]
    vmin, vmax = ZScaleInterval().get_limits(finite if finite.size else np.zeros(1))
    return b, a, float(vmin), float(vmax)


def draw_before_after(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, title: str, destination: Path
) -> Path:
    """Draw raw, calibrated and mask panels side by side into a PNG (written atomically)."""
    b, a, vmin, vmax = same_stretch(before, after)
    fig = Figure(figsize=(13, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, image, label in ((axes[0], b, "raw - median"), (axes[1], a, "calibrated - median")):
        shown = ax.imshow(image, origin="lower", cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{label} (zscale {vmin:.3g} .. {vmax:.3g})", fontsize=9)
    fig.colorbar(shown, ax=axes[:2], shrink=0.8, label="data units")
    axes[2].imshow(mask != 0, origin="lower", cmap="Reds", interpolation="nearest")
    axes[2].set_title(f"mask: {int(np.count_nonzero(mask))} flagged pixels", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return destination


def plot_before_after(settings: Settings, calibrated: Path | str) -> Path | None:
    """Before/after PNG of one calibrated frame under ``plots/<night>/``; ``None`` if the raw is gone.

    Parameters
    ----------
    settings
        The effective settings (``paths.output``).
    calibrated
        A calibrated frame written by the calibrate step.

    Returns
    -------
    Path or None
        ``<output>/plots/<night>/calibrate_<stem>.png``.
    """
    frame = read_calibrated(calibrated)
    history = [str(v) for v in frame.header.get("HISTORY", [])]
    source = raw_source(history)
    if source is None:
        log.warning("no raw: HISTORY line in %s; no before/after plot", calibrated)
        return None
    try:
        raw, _ = read_image(source[0], hdu=source[1])
    except NightpipeError as exc:
        log.warning("before/after plot skipped: %s", exc)
        return None
    if raw.shape != frame.data.shape:  # overscan trimmed: show the raw crop of the same size
        raw = raw[: frame.data.shape[0], : frame.data.shape[1]]
    night = Path(calibrated).parent.name
    destination = Path(settings.paths.output) / "plots" / night / f"calibrate_{Path(calibrated).stem}.png"
    return draw_before_after(raw, frame.data, frame.mask, Path(calibrated).name, destination)
