"""Asteroids and comets in a night's frames: SkyBoT's predictions matched to each frame's sources.

SkyBoT is asked at epochs on a fixed grid ``cadence`` minutes apart (every frame when 0); each
frame takes its slot's answer and moves every body along its apparent rate to its mid-time.
A body counts as seen on a frame when a source lies within the match radius of its predicted
position (three times its SkyBoT uncertainty combined with the frame's astrometric error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from nightpipe.identify.match import match_radius, match_sky, separation_arcsec
from nightpipe.identify.skybot import move_to


@dataclass(frozen=True)
class FrameSources:
    """One frame's mid-time (JD, UTC) and its measured sources on the sky."""

    frame_id: int
    jd: float
    ra: np.ndarray
    dec: np.ndarray


def epoch_of(jd: float, cadence_min: float) -> float:
    """The epoch SkyBoT is asked for on behalf of a frame at ``jd``.

    With a cadence, the middle of its ``cadence_min`` slot on a fixed grid (JD 0 + k x cadence),
    so that epochs fetched ahead of a night (``catalog fetch --date``) are the ones the night
    asks for; without one, the frame's own mid-time.
    """
    if cadence_min <= 0:
        return round(float(jd), 4)
    step = cadence_min / 1440.0
    return round((np.floor(float(jd) / step) + 0.5) * step, 4)


def epochs(jds: Sequence[float], cadence_min: float) -> list[float]:
    """The distinct epochs to ask SkyBoT for, for frames at ``jds``."""
    return sorted({epoch_of(j, cadence_min) for j in jds})


def match_frames(
    frames: Sequence[FrameSources],
    answer_at: Callable[[float], Table | None],
    cadence_min: float,
    *,
    centre: tuple[float, float],
    radius_deg: float,
    astrometric_err: float,
    floor: float,
) -> Table:
    """One row per (frame, body predicted in the field): predicted place, magnitude, match."""
    answers: dict[float, Table | None] = {}
    rows: list[tuple[object, ...]] = []
    for frame in frames:
        nearest = epoch_of(frame.jd, cadence_min)
        if nearest not in answers:
            answers[nearest] = answer_at(nearest)
        table = answers[nearest]
        if table is None or len(table) == 0:
            continue
        ra, dec = move_to(table, nearest, frame.jd)
        inside = separation_arcsec(ra, dec, centre[0], centre[1]) <= radius_deg * 3600.0
        if not inside.any():
            continue
        radius = match_radius(astrometric_err, np.asarray(table["pos_err"], float)[inside], floor)
        # match bodies to sources (each body: its nearest source)
        found = match_sky(
            ra[inside], dec[inside], frame.ra, frame.dec, radius_arcsec=np.full(len(frame.ra), radius.max())
        )
        for k, row in enumerate(table[inside]):
            seen = bool(found.index[k] >= 0 and found.separation[k] <= radius[k])
            rows.append((
                frame.frame_id, frame.jd, str(row["name"]), str(row["number"]), str(row["kind"]),
                float(row["V"]), float(ra[inside][k]), float(dec[inside][k]), float(radius[k]),
                int(found.index[k]) if seen else -1, float(found.separation[k]) if seen else np.nan,
            ))  # fmt: skip
    names = ("frame_id", "jd_utc", "name", "number", "kind", "V", "ra", "dec", "radius_arcsec",
             "source_index", "offset_arcsec")  # fmt: skip
    types = (int, float, str, str, str, float, float, float, float, int, float)
    if not rows:
        return Table(names=names, dtype=types)
    return Table(rows=rows, names=names, dtype=types)


def bodies(per_frame: Table) -> Table:
    """One row per body: class, brightest predicted V, frames predicted and frames seen, median offset."""
    names = ("name", "number", "kind", "V", "n_frames", "n_seen", "median_offset_arcsec")
    if len(per_frame) == 0:
        return Table(names=names, dtype=(str, str, str, float, int, int, float))
    rows = []
    for name in sorted(set(per_frame["name"])):
        part = per_frame[per_frame["name"] == name]
        seen = np.asarray(part["source_index"]) >= 0
        offsets = np.asarray(part["offset_arcsec"], float)[seen]
        median = float(np.median(offsets)) if offsets.size else np.nan
        first = part[0]
        vmin = float(np.nanmin(part["V"]))
        n_seen = int(seen.sum())
        rows.append((name, str(first["number"]), str(first["kind"]), vmin, len(part), n_seen, median))
    return Table(rows=rows, names=names)
