"""Cut-out strips of moving objects: a row of small stamps from the calibrated frames, centred on
the object's measured position in each (up to ``STAMPS`` frames spread over the track), each
scaled between its own sky level and a bright percentile, written as one PNG per object."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image
from sqlalchemy import select

from nightpipe.calib.calibrated_io import calibrated_path
from nightpipe.frames.fitsio import atomic_path
from nightpipe.movers.linking import Track
from nightpipe.movers.transients import Detections
from nightpipe.store.db import Database
from nightpipe.store.models import Frame
from nightpipe.store.models_photometry import Measurement

log = logging.getLogger(__name__)
STAMPS = 8
STAMP_PX = 33  # odd: the object at the centre pixel
GAP_PX = 2


def stamp(data: np.ndarray, x: float, y: float, size: int = STAMP_PX) -> np.ndarray:
    """A ``size`` x ``size`` cut-out around (x, y) (0-based pixels), NaN outside the frame."""
    half = size // 2
    out = np.full((size, size), np.nan)
    cx, cy = round(x), round(y)
    y0, y1 = max(cy - half, 0), min(cy + half + 1, data.shape[0])
    x0, x1 = max(cx - half, 0), min(cx + half + 1, data.shape[1])
    if y0 < y1 and x0 < x1:
        out[y0 - (cy - half) : y1 - (cy - half), x0 - (cx - half) : x1 - (cx - half)] = data[y0:y1, x0:x1]
    return out


def _scaled(cut: np.ndarray) -> np.ndarray:
    """8-bit grey of a stamp: its median (the sky) black, its 99.5th percentile white."""
    finite = cut[np.isfinite(cut)]
    if not finite.size:
        return np.zeros(cut.shape, np.uint8)
    low, high = np.median(finite), np.percentile(finite, 99.5)
    grey = np.clip((np.nan_to_num(cut, nan=low) - low) / max(high - low, 1e-9), 0, 1)
    return np.asarray(np.flipud(grey) * 255, np.uint8)  # north-ish up: FITS row 0 at the bottom


def strip_image(stamps: list[np.ndarray]) -> np.ndarray:
    """The stamps side by side with a gap of ``GAP_PX`` (8-bit grey)."""
    size = stamps[0].shape[0]
    width = len(stamps) * size + (len(stamps) - 1) * GAP_PX
    out = np.full((size, width), 40, np.uint8)
    for k, cut in enumerate(stamps):
        out[:, k * (size + GAP_PX) : k * (size + GAP_PX) + size] = _scaled(cut)
    return out


def safe_name(designation: str) -> str:
    """A file name of a designation ("(1) Ceres" -> "1_Ceres")."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", designation).strip("_") or "object"


def write_strips(
    db: Database,
    output: Path,
    night: str,
    folder: Path,
    tracks: list[Track],
    moving: Detections,
    names: list[str],
) -> dict[str, str]:
    """``strips/<designation>.png`` per track; returns designation -> file name (relative to ``folder``)."""
    frame_ids = {int(moving.frame[m]) for t in tracks for m in t.members}
    with db.session() as session:
        paths = {
            int(i): calibrated_path(output, night, p, h)
            for i, p, h in session.execute(
                select(Frame.id, Frame.path, Frame.hdu).where(Frame.id.in_(frame_ids))
            )
        }
        xy = {
            (int(f), int(s)): (float(x), float(y))
            for f, s, x, y in session.execute(
                select(Measurement.frame_id, Measurement.source_index, Measurement.x, Measurement.y).where(
                    Measurement.frame_id.in_(frame_ids)
                )
            )
        }
    written: dict[str, str] = {}
    (folder / "strips").mkdir(parents=True, exist_ok=True)
    for track, name in zip(tracks, names, strict=True):
        order = track.members[np.argsort(moving.jd[track.members])]
        pick = order[np.unique(np.linspace(0, order.size - 1, min(STAMPS, order.size)).round().astype(int))]
        stamps = []
        for m in pick:
            key = (int(moving.frame[m]), int(moving.source_index[m]))
            path = paths.get(key[0])
            if key not in xy or path is None or not path.is_file():
                continue
            with fits.open(path, memmap=True) as hdul:
                stamps.append(stamp(np.asarray(hdul[0].data, float), *xy[key]))
        if not stamps:
            log.warning("movers: no calibrated frame found for the strip of %s", name)
            continue
        relative = f"strips/{safe_name(name)}.png"
        with atomic_path(folder / relative, suffix=".png") as tmp:
            Image.fromarray(strip_image(stamps)).save(tmp, format="PNG")
        written[name] = relative
    return written
