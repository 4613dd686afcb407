"""What identification needs of a night, read once from the database: sources on the sky, times, errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from sqlalchemy import func, select

from nightpipe.identify.solar_system import FrameSources
from nightpipe.store.db import Database
from nightpipe.store.models import Frame
from nightpipe.store.models_astrometry import PlateSolution
from nightpipe.store.models_photometry import Measurement


@dataclass(frozen=True)
class NightSky:
    """The night's solved sources, frame by frame, and the field they cover."""

    frames: list[FrameSources]
    reference: Table  # the stars of the frame with the most sources (ra, dec, frame_id, source_index)
    centre: tuple[float, float]
    radius_deg: float
    epoch_jd: float
    astrometric_err: float  # median plate-solution rms, arcsec

    @property
    def epoch_year(self) -> float:
        """The night's mean epoch as a Julian year (for proper motions)."""
        return 2000.0 + (self.epoch_jd - 2451545.0) / 365.25


def field_of(ra: np.ndarray, dec: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre (mean direction) and radius (deg) of a set of sky positions."""
    r_ra, r_dec = np.radians(ra), np.radians(dec)
    vec = np.column_stack([np.cos(r_dec) * np.cos(r_ra), np.cos(r_dec) * np.sin(r_ra), np.sin(r_dec)])
    mean = vec.mean(axis=0)
    mean /= np.linalg.norm(mean)
    centre = (float(np.degrees(np.arctan2(mean[1], mean[0])) % 360.0), float(np.degrees(np.arcsin(mean[2]))))
    radius = float(np.degrees(np.arccos(np.clip(vec @ mean, -1.0, 1.0))).max())
    return centre, radius


def night_sky(db: Database, night: str, margin_deg: float, frame_id: int | None = None) -> NightSky | None:
    """The night's (or one frame's) sources with sky positions; ``None`` when none was solved and measured."""
    query = (
        select(Measurement.frame_id, Measurement.source_index, Measurement.ra, Measurement.dec)
        .join(Frame, Frame.id == Measurement.frame_id)
        .where(Frame.night == night, Measurement.ra.is_not(None), Measurement.dec.is_not(None))
        .order_by(Measurement.frame_id, Measurement.source_index)
    )
    if frame_id is not None:
        query = query.where(Measurement.frame_id == frame_id)
    with db.session() as session:
        rows = session.execute(query).all()
        times = {
            fid: float(jd)
            for fid, jd in session.execute(select(Frame.id, Frame.jd_utc).where(Frame.night == night))
            if jd is not None
        }
        rms = session.scalar(
            select(func.avg(PlateSolution.rms_arcsec)).where(
                PlateSolution.night == night, PlateSolution.solved.is_(True)
            )
        )
    if not rows:
        return None
    data = np.array([(r[0], r[1], r[2], r[3]) for r in rows], dtype=float)
    frame_ids = data[:, 0].astype(np.int64)
    frames: list[FrameSources] = []
    bounds = np.flatnonzero(np.diff(frame_ids)) + 1
    for part in np.split(np.arange(len(data)), bounds):
        fid = int(frame_ids[part[0]])
        if fid in times:
            frames.append(FrameSources(fid, float(times[fid]), data[part, 2], data[part, 3]))
    sizes = np.diff(np.concatenate([[0], bounds, [len(data)]]))
    ref_part = np.split(np.arange(len(data)), bounds)[int(np.argmax(sizes))]
    reference = Table(
        {
            "frame_id": frame_ids[ref_part],
            "source_index": data[ref_part, 1].astype(np.int64),
            "ra": data[ref_part, 2],
            "dec": data[ref_part, 3],
        }
    )
    centre, radius = field_of(data[:, 2], data[:, 3])
    jds = [f.jd for f in frames] or [2451545.0]
    return NightSky(
        frames=frames,
        reference=reference,
        centre=centre,
        radius_deg=radius + margin_deg,
        epoch_jd=float(np.mean(jds)),
        astrometric_err=float(rms) if rms is not None else 1.0,
    )
