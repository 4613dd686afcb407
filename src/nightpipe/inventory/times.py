"""Timing a chunk of scanned files: mid-exposure, JD_UTC, BJD_TDB and night of every frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nightpipe.config import Settings
from nightpipe.frames.timing import (
    ExposureTime,
    barycentric_times,
    exposure_mid,
    match_target,
    night_of,
    resolve_location,
)
from nightpipe.inventory.rows import FileResult


def _add_times(results: list[tuple[FileResult, str]], settings: Settings) -> None:
    """Compute mid-exposure, JD_UTC, BJD_TDB for every frame of the chunk (astropy, vectorised)."""
    observatory = settings.observatory
    slots: list[tuple[FileResult, int, ExposureTime]] = []
    ra: list[float | None] = []
    dec: list[float | None] = []
    lat: list[float] = []
    lon: list[float] = []
    height: list[float] = []
    for result, _ in results:
        for index, frame in enumerate(result.frames):
            stamp = exposure_mid(
                frame.cards,
                frame.header.exptime,
                utc_offset_hours=observatory.utc_offset_hours,
                comments=frame.comments,
            )
            if stamp is None:
                continue
            head = frame.header
            la, lo, he, _source = resolve_location(
                head.site_lat,
                head.site_lon,
                head.site_elev,
                observatory,
                local_offset_hours=stamp.local_offset_hours,
            )
            target = match_target(head.object, settings.timeseries.targets)
            ra.append(target.ra if target is not None else head.ra)
            dec.append(target.dec if target is not None else head.dec)
            lat.append(la)
            lon.append(lo)
            height.append(he)
            slots.append((result, index, stamp))
    if not slots:
        return
    jd, bjd = barycentric_times([s[2].mid_utc for s in slots], ra, dec, lat, lon, height)
    for (result, index, stamp), j, b, lo in zip(slots, jd, bjd, lon, strict=True):
        result.frames[index] = replace(
            result.frames[index],
            time=stamp,
            jd_utc=float(j),
            bjd_tdb=float(b) if np.isfinite(b) else None,
            night=night_of(stamp.mid_utc, lo),
        )
