"""Grouping frames alike in kind, binning, filter, exposure and temperature."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.store.models import Frame


@dataclass(frozen=True)
class FrameGroup:
    """Frames alike in kind, binning, filter, exposure and temperature.

    ``temperature`` is the set point when the header gives one, else the measured CCD
    temperature, rounded to whole degrees C; ``exptime`` is rounded to milliseconds.
    """

    kind: str
    xbin: int | None
    ybin: int | None
    filter: str | None
    exptime: float | None
    temperature: float | None
    count: int
    first_utc: datetime | None
    last_utc: datetime | None
    nights: tuple[str, ...]

    @property
    def binning(self) -> str:
        """``'1x1'``, or ``'?'`` when unknown."""
        return f"{self.xbin}x{self.ybin}" if self.xbin is not None and self.ybin is not None else "?"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for CSV/JSON output."""
        return {
            "kind": self.kind,
            "binning": self.binning,
            "filter": self.filter,
            "exptime": self.exptime,
            "temperature": self.temperature,
            "count": self.count,
            "first_utc": self.first_utc.isoformat() if self.first_utc else None,
            "last_utc": self.last_utc.isoformat() if self.last_utc else None,
            "nights": list(self.nights),
        }


_KIND_ORDER = {"bias": 0, "dark": 1, "flat": 2, "light": 3, "unknown": 4}


GroupKey = tuple[str, int | None, int | None, str | None, float | None, float | None]


def group_key(frame: Frame, temperature_step: float = 1.0) -> GroupKey:
    """The grouping key of a frame: kind, xbin, ybin, filter, exposure (ms), temperature.

    The temperature is the set point when there is one, else the measured one, rounded to a
    multiple of ``temperature_step`` degrees C.

    Examples
    --------
    >>> group_key(Frame(kind="dark", xbin=1, ybin=1, exptime=30.0004, ccd_temp=-9.6))
    ('dark', 1, 1, None, 30.0, -10.0)
    """
    temp = frame.set_temp if frame.set_temp is not None else frame.ccd_temp
    step = temperature_step if temperature_step > 0 else 1.0
    return (
        frame.kind,
        frame.xbin,
        frame.ybin,
        frame.filter,
        None if frame.exptime is None else round(frame.exptime, 3),
        None if temp is None else float(round(temp / step) * step),
    )


def group_rows(frames: Iterable[Frame], *, temperature_step: float = 1.0) -> list[FrameGroup]:
    """Group frames by :func:`group_key`; sorted by kind (bias, dark, flat, light), then the key."""
    buckets: dict[GroupKey, list[Frame]] = defaultdict(list)
    for frame in frames:
        buckets[group_key(frame, temperature_step)].append(frame)
    groups = []
    for key, members in buckets.items():
        times = sorted(f.mid_utc for f in members if f.mid_utc is not None)
        nights = tuple(sorted({f.night for f in members if f.night}))
        kind, xbin, ybin, filt, exptime, temp = key
        groups.append(
            FrameGroup(
                kind, xbin, ybin, filt, exptime, temp, count=len(members),
                first_utc=times[0] if times else None, last_utc=times[-1] if times else None, nights=nights,
            )
        )  # fmt: skip

    def order(g: FrameGroup) -> tuple[Any, ...]:
        return (_KIND_ORDER.get(g.kind, 9), g.xbin or 0, g.ybin or 0, g.filter or "", g.exptime or 0.0,
                g.temperature if g.temperature is not None else -999.0)  # fmt: skip

    return sorted(groups, key=order)


def group_frames(
    session: Session, *, night: str | None = None, temperature_step: float = 1.0
) -> list[FrameGroup]:
    """Readable frames (of one night or all) grouped by kind x binning x filter x exposure x temperature
    (temperatures rounded to multiples of ``temperature_step`` degrees C)."""
    query = select(Frame).where(Frame.status == "ok")
    if night is not None:
        query = query.where(Frame.night == night)
    return group_rows(session.scalars(query), temperature_step=temperature_step)
