"""Asteroids and comets in a night's frames: SkyBoT's predictions matched to each frame's sources.

SkyBoT is asked at epochs ``cadence`` minutes apart (every frame when 0); each frame takes the
nearest epoch's answer and moves every body along its apparent rate to the frame's mid-time.
A body counts as seen on a frame when a source lies within the match radius of its predicted
position (three times its SkyBoT uncertainty combined with the frame's astrometric error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from nightpipe.identify.match import match_radius, match_sky
from nightpipe.identify.skybot import move_to


@dataclass(frozen=True)
class FrameSources:
    """One frame's mid-time (JD, UTC) and its measured sources on the sky."""

    frame_id: int
    jd: float
    ra: np.ndarray
    dec: np.ndarray


def epochs(jds: Sequence[float], cadence_min: float) -> list[float]:
    """The epochs to ask SkyBoT for: every frame's, or one per ``cadence_min`` bin (its middle frame)."""
    times = sorted(float(j) for j in jds)
    if not times or cadence_min <= 0:
        return times
    step = cadence_min / 1440.0
    bins = np.floor((np.asarray(times) - times[0]) / step).astype(int)
    return [float(np.median(np.asarray(times)[bins == b])) for b in np.unique(bins)]


def match_frames(
    frames: Sequence[FrameSources],
    answer_at: Callable[[float], Table | None],
    asked: Sequence[float],
    *,
    centre: tuple[float, float],
    radius_deg: float,
    astrometric_err: float,
    floor: float,
) -> Table:
    """One row per (frame, body predicted in the field): predicted place, magnitude, match."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    middle = SkyCoord(centre[0] * u.deg, centre[1] * u.deg)
    asked_arr = np.asarray(sorted(asked), float)
    answers: dict[float, Table | None] = {}
    rows: list[tuple[object, ...]] = []
    for frame in frames:
        if asked_arr.size == 0:
            break
        nearest = float(asked_arr[np.argmin(np.abs(asked_arr - frame.jd))])
        if nearest not in answers:
            answers[nearest] = answer_at(nearest)
        table = answers[nearest]
        if table is None or len(table) == 0:
            continue
        ra, dec = move_to(table, nearest, frame.jd)
        inside = SkyCoord(ra * u.deg, dec * u.deg).separation(middle).deg <= radius_deg
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
