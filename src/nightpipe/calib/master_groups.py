"""Grouping calibration frames into the masters to build (pure: no I/O).

:func:`group_frames` puts the bias, dark and flat frames whose set-up must match into one
:class:`FrameGroup` each (with the :class:`~nightpipe.calib.library.MasterKeys` of its master),
darks split by exposure and every group by CCD temperature.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nightpipe.calib.library import MasterKeys, as_utc
from nightpipe.config import Settings
from nightpipe.store.models import Frame

BUILD_ORDER = ("bias", "dark", "flat")


@dataclass(frozen=True)
class FrameGroup:
    """Calibration frames that make one master, and the keys of that master."""

    keys: MasterKeys
    night: str | None
    frames: tuple[Frame, ...]

    @property
    def kind(self) -> str:
        """bias, dark or flat."""
        return self.keys.kind

    def label(self) -> str:
        """A short description for logs and progress bars."""
        return self.keys.filename().removesuffix(".fits")


def _split(
    frames: list[Frame], value: Callable[[Frame], float | None], close: Callable[[float, float], bool]
) -> list[list[Frame]]:
    """Split frames into runs of close values (sorted; frames without a value join the first run)."""
    known = sorted((f for f in frames if value(f) is not None), key=lambda f: value(f) or 0.0)
    runs: list[list[Frame]] = []
    for f in known:
        if runs and close(value(runs[-1][0]) or 0.0, value(f) or 0.0):
            runs[-1].append(f)
        else:
            runs.append([f])
    unknown = [f for f in frames if value(f) is None]
    if unknown:
        if runs:
            runs[0].extend(unknown)
        else:
            runs.append(unknown)
    return runs


def group_frames(frames: Sequence[Frame], settings: Settings) -> list[FrameGroup]:
    """Group calibration frames into masters to build (pure: no I/O).

    Frames are grouped by kind, night, binning, raw size, gain, gain setting, offset and readout mode, flats
    also by filter (case-insensitive); darks are split into runs of exposures within the
    relative ``exposure_tolerance``, and every group into runs of temperatures within
    ``temperature_tolerance``. Darks without an exposure time are left out.
    """
    cal = settings.calibration
    buckets: dict[tuple[Any, ...], list[Frame]] = {}
    for f in frames:
        if f.kind not in BUILD_ORDER:
            continue
        key = (
            BUILD_ORDER.index(f.kind),
            f.night or "",
            f.xbin,
            f.ybin,
            f.naxis1,
            f.naxis2,
            f.gain,
            f.offset,
            f.readout_mode,
            f.gain_setting,
            (f.filter or "").strip().lower() if f.kind == "flat" else "",
        )
        buckets.setdefault(key, []).append(f)
    groups: list[FrameGroup] = []
    for key in sorted(buckets, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        members = buckets[key]
        runs = [members]
        if members[0].kind == "dark":
            # a dark without an exposure time is never grouped (the scan marks it unusable, naming
            # the card): it would join darks of any exposure
            runs = _split(
                [f for f in members if f.exptime is not None],
                lambda f: f.exptime,
                lambda a, b: abs(b - a) <= cal.exposure_tolerance * max(abs(a), abs(b)) + 1e-9,
            )
        for run in runs:
            for cluster in _split(run, lambda f: f.ccd_temp, lambda a, b: b - a <= cal.temperature_tolerance):
                cluster.sort(
                    key=lambda f: (as_utc(f.mid_utc) or datetime.min.replace(tzinfo=UTC), f.path, f.hdu)
                )
                groups.append(_group_of(cluster))
    return groups


def _group_of(frames: list[Frame]) -> FrameGroup:
    first = frames[0]
    temps = [f.ccd_temp for f in frames if f.ccd_temp is not None]
    exps = [f.exptime for f in frames if f.exptime is not None]
    times = [as_utc(f.mid_utc) for f in frames if f.mid_utc is not None]
    obs_time = None
    if times:
        stamps = sorted(t.timestamp() for t in times if t is not None)
        obs_time = datetime.fromtimestamp(statistics.median(stamps), tz=UTC)
    keys = MasterKeys(
        kind=first.kind,
        xbin=first.xbin,
        ybin=first.ybin,
        naxis1=first.naxis1,
        naxis2=first.naxis2,
        gain=first.gain,
        offset=first.offset,
        readout_mode=first.readout_mode,
        gain_setting=first.gain_setting,
        filter=((first.filter or "").strip() or None) if first.kind == "flat" else None,
        exptime=float(statistics.median(exps)) if exps and first.kind in ("dark", "flat") else None,
        ccd_temp=round(float(statistics.median(temps)), 2) if temps else None,
        obs_time=obs_time,
    )
    return FrameGroup(keys=keys, night=first.night, frames=tuple(frames))
