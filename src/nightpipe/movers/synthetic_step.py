"""Synthetic tracking as part of the movers step (``movers.synthetic = true``): the night's solved
frames registered (:mod:`nightpipe.movers.registered`), faint movers searched and confirmed
(:mod:`nightpipe.movers.faint`), each confirmed track turned into per-frame detections (its fitted
place in every frame, through the reference WCS) and a :class:`~nightpipe.movers.linking.Track`,
and merged with the linked bright-mover tracks (a synthetic track that follows a linked one is
dropped: the linked one has measured detections).

Per-frame places of a synthetic track are those of the fitted uniform motion (the track is found
below single-frame detection); their errors are the fit's position errors; magnitudes are not
measured here (NaN).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from nightpipe.movers.confirm import ConfirmOptions
from nightpipe.movers.faint import FaintOptions, find_faint
from nightpipe.movers.linking import Track, fit_motion, tangent_plane
from nightpipe.movers.registered import register
from nightpipe.movers.transients import Detections
from nightpipe.store.models import Frame
from nightpipe.store.models_astrometry import PlateSolution

if TYPE_CHECKING:
    from nightpipe.config import Settings
    from nightpipe.movers.step import NightDetections
    from nightpipe.store.db import Database

log = logging.getLogger(__name__)


def solved_frames(db: Database, night: str) -> tuple[list[Path], list[int], list[float], float, float]:
    """Paths, frame ids, JD (UTC) of the night's solved frames in time order; median FWHM (px) and scale."""
    with db.session() as session:
        rows = session.execute(
            select(
                PlateSolution.path, Frame.id, Frame.jd_utc, PlateSolution.fwhm_px, PlateSolution.pixel_scale
            )
            .join(Frame, Frame.id == PlateSolution.frame_id)
            .where(PlateSolution.night == night, PlateSolution.solved.is_(True), Frame.jd_utc.is_not(None))
            .order_by(Frame.jd_utc)
        ).all()
    rows = [r for r in rows if r[0] and Path(str(r[0])).is_file()]
    fwhm = [float(r[3]) for r in rows if r[3]]
    scale = [float(r[4]) for r in rows if r[4]]
    return (
        [Path(str(r[0])) for r in rows],
        [int(r[1]) for r in rows],
        [float(r[2] or 0.0) for r in rows],
        float(np.median(fwhm)) if fwhm else 3.0,
        float(np.median(scale)) if scale else 1.0,
    )


def add_faint_tracks(
    settings: Settings,
    db: Database,
    night: str,
    moving: Detections,
    tracks: list[Track],
    subset: NightDetections,
) -> tuple[Detections, list[Track], NightDetections, dict[str, float]]:
    """The linked tracks and detections with the confirmed synthetic tracks added."""
    cfg = settings.movers
    paths, ids, jd, fwhm_px, scale = solved_frames(db, night)
    if len(paths) < 5:
        return moving, tracks, subset, {"synthetic_skipped": 1.0}
    reg = register(paths, ids, jd)
    span_min = (max(jd) - min(jd)) * 1440.0
    options = FaintOptions(
        max_shift_px=cfg.max_rate_arcsec_min * span_min / scale,
        threshold=cfg.synthetic_threshold,
        confirm=ConfirmOptions(min_snr=cfg.synthetic_min_snr, min_motion_px=2.0 * fwhm_px),
    )
    if options.max_shift_px > cfg.synthetic_max_shift_px:
        options = replace(options, max_shift_px=cfg.synthetic_max_shift_px)
    times = reg.jd - reg.jd[0]
    found = find_faint(reg.cube, times, fwhm_px, options)
    xi_m, eta_m = tangent_plane(moving.ra, moving.dec, *subset.centre)
    rows: list[Detections] = []
    new_tracks: list[Track] = []
    start = len(moving)
    duplicates = 0
    for track in found.tracks:
        x, y = track.position(times)
        ra, dec = reg.wcs.pixel_to_world_values(x, y)
        ra, dec = np.asarray(ra, float), np.asarray(dec, float)
        xi, eta = tangent_plane(ra, dec, *subset.centre)
        if _follows_linked(xi, eta, reg.frame_ids, tracks, moving, xi_m, eta_m, 2.0 * fwhm_px * scale):
            duplicates += 1
            continue
        sigma = np.full(x.size, float(np.hypot(track.sigma[0], track.sigma[1])) * scale)
        p, v = fit_motion(reg.jd, xi, eta, sigma)
        rms = float(np.sqrt(np.mean((xi - p[0] - v[0] * (reg.jd - reg.jd[0])) ** 2)))
        n = x.size
        rows.append(
            Detections(reg.frame_ids, reg.jd, ra, dec, sigma, np.full(n, -1, np.int64), np.zeros(n, np.int64))
        )
        members = np.arange(start, start + n, dtype=np.int64)
        new_tracks.append(Track(members, float(reg.jd[0]), p, v, rms))
        start += n
    summary = {
        "synthetic_peaks": float(found.peaks),
        "synthetic_rejected": float(found.rejected),
        "synthetic_tracks": float(len(new_tracks)),
        "synthetic_duplicates": float(duplicates),
        "synthetic_seconds": round(found.seconds, 2),
        "synthetic_frame_px_per_s": found.frame_pixels_per_s,
    }
    if not rows:
        return moving, tracks, subset, summary
    fields = Detections.__dataclass_fields__
    merged = Detections(
        *(np.concatenate([getattr(moving, f)] + [getattr(r, f) for r in rows]) for f in fields)
    )
    extra = sum(len(r) for r in rows)
    merged_subset = replace(
        subset,
        det=merged,
        mag=np.concatenate([subset.mag, np.full(extra, np.nan)]),
        mag_err=np.concatenate([subset.mag_err, np.full(extra, np.nan)]),
    )
    log.info("synthetic tracking %s: %d new tracks (%d peaks)", night, len(new_tracks), found.peaks)
    return merged, tracks + new_tracks, merged_subset, summary


def _follows_linked(
    xi: np.ndarray,
    eta: np.ndarray,
    frame_ids: np.ndarray,
    tracks: list[Track],
    moving: Detections,
    xi_m: np.ndarray,
    eta_m: np.ndarray,
    radius: float,
) -> bool:
    """Whether the synthetic track passes within ``radius`` (arcsec) of a linked track's detections."""
    where = {int(f): k for k, f in enumerate(frame_ids)}
    for track in tracks:
        d = [
            np.hypot(xi[where[int(moving.frame[m])]] - xi_m[m], eta[where[int(moving.frame[m])]] - eta_m[m])
            for m in track.members
            if int(moving.frame[m]) in where
        ]
        if d and float(np.median(d)) < radius:
            return True
    return False
