"""Querying the inventory: light and calibration frames, frames of a night or kind, problem files,
and a frame row as plain data for listings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.store.models import Frame

CALIBRATION_KINDS = ("bias", "dark", "flat")


def light_frames(session: Session, night: str | None = None) -> list[Frame]:
    """The readable light frames (of one night, ``YYYY-MM-DD``, or all), in time order.

    Examples
    --------
    >>> with db.session() as s:  # doctest: +SKIP
    ...     frames = light_frames(s, night="2017-12-19")
    """
    query = select(Frame).where(Frame.status == "ok", Frame.kind == "light")
    if night is not None:
        query = query.where(Frame.night == night)
    return list(session.scalars(query.order_by(Frame.mid_utc, Frame.path, Frame.hdu)))


def calibration_frames(
    session: Session,
    kind: str,
    *,
    night: str | None = None,
    xbin: int | None = None,
    ybin: int | None = None,
    filter: str | None = None,
) -> list[Frame]:
    """The readable calibration frames of one kind (``bias``, ``dark`` or ``flat``), in time order.

    Optional filters: the night, the binning, the filter (only meaningful for flats).

    Raises
    ------
    ValueError
        For a kind that is not a calibration kind.
    """
    if kind not in CALIBRATION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CALIBRATION_KINDS)}, not {kind!r}")
    query = select(Frame).where(Frame.status == "ok", Frame.kind == kind)
    if night is not None:
        query = query.where(Frame.night == night)
    if xbin is not None:
        query = query.where(Frame.xbin == xbin)
    if ybin is not None:
        query = query.where(Frame.ybin == ybin)
    if filter is not None:
        query = query.where(Frame.filter == filter)
    return list(session.scalars(query.order_by(Frame.mid_utc, Frame.path, Frame.hdu)))


def query_frames(session: Session, *, night: str | None = None, kind: str | None = None) -> list[Frame]:
    """Readable frames, optionally of one night and one kind, in time order."""
    query = select(Frame).where(Frame.status == "ok")
    if night is not None:
        query = query.where(Frame.night == night)
    if kind is not None:
        query = query.where(Frame.kind == kind)
    return list(session.scalars(query.order_by(Frame.mid_utc, Frame.path, Frame.hdu)))


def frame_summary(frame: Frame) -> dict[str, Any]:
    """The main columns of a frame row as plain data (for listings, CSV and JSON)."""
    return {
        "path": frame.path,
        "hdu": frame.hdu,
        "kind": frame.kind,
        "kind_source": frame.kind_source,
        "inferred": frame.kind_inferred,
        "filter": frame.filter,
        "exptime": frame.exptime,
        "binning": f"{frame.xbin}x{frame.ybin}"
        if frame.xbin is not None and frame.ybin is not None
        else None,
        "ccd_temp": frame.ccd_temp,
        "size": f"{frame.naxis1}x{frame.naxis2}" if frame.naxis1 is not None else None,
        "object": frame.object,
        "mid_utc": frame.mid_utc.isoformat() if frame.mid_utc is not None else None,
        "bjd_tdb": frame.bjd_tdb,
        "time_source": frame.time_source,
        "night": frame.night,
    }


def problem_frames(session: Session) -> list[Frame]:
    """Rows of bad (unreadable or unusable), missing and duplicate files, and of usable frames
    the scan has a note on (``error`` set: an unreadable DATE-OBS, no time...), by path."""
    query = (
        select(Frame).where((Frame.status != "ok") | Frame.error.is_not(None)).order_by(Frame.path, Frame.hdu)
    )
    return list(session.scalars(query))
