"""Storing a scan's rows: what the database knows of each file, one row per image HDU.

A file that cannot be read gets one ``bad`` row with the reason (and a failed ``scan`` step);
rows of files no longer found are marked ``missing``.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightpipe.errors import FitsReadError
from nightpipe.inventory.classify import FrameInfo
from nightpipe.inventory.walk import is_scannable
from nightpipe.store.base import utcnow
from nightpipe.store.models import Frame
from nightpipe.store.steps import record_step

# the package's logger, as before the split: records keep their name (and the "[inventory]" tag)
log = logging.getLogger("nightpipe.inventory")

SCAN_STEP = "scan"


@dataclass
class FileResult:
    """The frames read from one file, or why it could not be read."""

    path: str
    size: int
    mtime: float
    sha1: str
    frames: list[FrameInfo] = field(default_factory=list)
    error: str | None = None
    settings_hash: str | None = None


@dataclass
class _Known:
    """What the database knows of one file (all its rows)."""

    size: int
    mtime: float
    sha1: str | None
    status: str
    ids: dict[int, int]
    settings_hash: str | None = None


def _known_files(session: Session, roots: Sequence[str]) -> dict[str, _Known]:
    conditions = []
    for root in roots:
        conditions.append(Frame.path == root)
        conditions.append(Frame.path.startswith(root.rstrip(os.sep) + os.sep, autoescape=True))
    rows = session.execute(
        select(
            Frame.id,
            Frame.path,
            Frame.hdu,
            Frame.size,
            Frame.mtime,
            Frame.sha1,
            Frame.status,
            Frame.settings_hash,
        ).where(or_(*conditions))
    )
    known: dict[str, _Known] = {}
    for frame_id, path, hdu, size, mtime, sha1, status, digest in rows:
        entry = known.get(path)
        if entry is None:
            known[path] = _Known(size, mtime, sha1, status, {hdu: frame_id}, digest)
        else:
            entry.ids[hdu] = frame_id
            if status == "missing":
                entry.status = status
    return known


def _write_chunk(
    session: Session,
    touched_only: list[tuple[str, os.stat_result]],
    results: list[tuple[FileResult, str]],
    known: dict[str, _Known],
    *,
    one_by_one: bool,
) -> dict[str, int]:
    """Write a chunk's rows; ``one_by_one`` isolates each file in a savepoint, and a file the
    database refuses (a path too long for the column...) is stored as bad, or skipped."""
    counts: dict[str, int] = defaultdict(int)
    for path, stat in touched_only:
        for frame_id in known[path].ids.values():
            row = session.get(Frame, frame_id)
            if row is not None:
                row.size, row.mtime = stat.st_size, stat.st_mtime
    for result, reason in results:
        counts["added" if reason == "added" else "updated"] += 1
        if not one_by_one:
            counts["frames"] += _store(session, result, known.get(result.path))
            counts["bad"] += result.error is not None or any(f.unusable for f in result.frames)
            continue
        try:
            with session.begin_nested():
                counts["frames"] += _store(session, result, known.get(result.path))
        except SQLAlchemyError as exc:
            reason_text = (
                f"cannot be stored in the database ({exc.__class__.__name__}: {str(exc).splitlines()[0]})"
            )
            result.frames, result.error = [], str(FitsReadError(reason_text[:500], path=result.path))
            log.warning("%s", result.error)
            try:
                with session.begin_nested():
                    _store(session, result, known.get(result.path))
            except SQLAlchemyError:
                log.error("%s: not stored at all", result.path)
        counts["bad"] += result.error is not None or any(f.unusable for f in result.frames)
    return dict(counts)


def _store(session: Session, result: FileResult, entry: _Known | None) -> int:
    """Write the rows of one file; returns the number of image rows written."""
    ids = dict(entry.ids) if entry is not None else {}
    now = utcnow()
    if result.error is not None:
        row = _row_for(session, ids, 0, result.path)
        _reset(row)
        row.size, row.mtime, row.sha1 = result.size, result.mtime, result.sha1 or None
        row.status, row.error, row.scanned_at = "bad", result.error, now
        row.settings_hash = result.settings_hash
        _delete_others(session, ids, keep={0})
        session.flush()
        record_step(session, step=SCAN_STEP, status="failed", frame_id=row.id, reason=result.error)
        return 0
    for frame in result.frames:
        row = _row_for(session, ids, frame.hdu, result.path)
        was_bad = row.status == "bad"
        _fill(row, result, frame, now)
        if frame.unusable is not None:
            session.flush()
            record_step(session, step=SCAN_STEP, status="failed", frame_id=row.id, reason=frame.unusable)
        elif was_bad:  # readable again: the earlier failure no longer stands
            session.flush()
            record_step(session, step=SCAN_STEP, status="ok", frame_id=row.id, night=row.night)
    _delete_others(session, ids, keep={f.hdu for f in result.frames})
    return len(result.frames)


def _row_for(session: Session, ids: dict[int, int], hdu: int, path: str) -> Frame:
    frame_id = ids.get(hdu)
    row = session.get(Frame, frame_id) if frame_id is not None else None
    if row is None:
        row = Frame(path=path, hdu=hdu)
        session.add(row)
    return row


def _delete_others(session: Session, ids: dict[int, int], keep: set[int]) -> None:
    for hdu, frame_id in ids.items():
        if hdu not in keep:
            row = session.get(Frame, frame_id)
            if row is not None:
                session.delete(row)


_HEADER_COLUMNS = (
    "kind", "kind_inferred", "kind_source", "filter", "exptime", "xbin", "ybin", "gain", "offset",
    "readout_mode", "gain_setting", "ccd_temp", "set_temp", "naxis1", "naxis2", "object", "ra", "dec",
    "observer", "site", "telescope", "instrument", "date_obs",
)  # fmt: skip


def _reset(row: Frame) -> None:
    for name in _HEADER_COLUMNS:
        setattr(row, name, None)
    row.kind, row.kind_inferred = "unknown", False
    row.mid_utc = row.jd_utc = row.bjd_tdb = row.time_source = row.night = row.header = None


def _fill(row: Frame, result: FileResult, frame: FrameInfo, now: datetime) -> None:
    row.size, row.mtime, row.sha1 = result.size, result.mtime, result.sha1
    # a frame that cannot be used is bad for its header; a usable one keeps the scan's notes
    row.status = "ok" if frame.unusable is None else "bad"
    row.error = frame.unusable or ("; ".join(frame.notes) if frame.notes else None)
    row.scanned_at = now
    row.settings_hash = result.settings_hash
    for name in _HEADER_COLUMNS:
        setattr(row, name, getattr(frame.header, name))
    row.header = frame.cards
    stamp = frame.time
    row.mid_utc = stamp.mid_utc if stamp is not None else None
    row.time_source = stamp.source if stamp is not None else None
    row.jd_utc, row.bjd_tdb, row.night = frame.jd_utc, frame.bjd_tdb, frame.night


def _mark_missing(session: Session, roots: Sequence[str], seen: set[str]) -> int:
    """Mark rows under ``roots`` whose file was not found as ``missing``; returns the file count."""
    gone: set[str] = set()
    for path, entry in _known_files(session, roots).items():
        if path in seen or entry.status == "missing":
            continue
        if os.path.exists(path) and is_scannable(os.path.basename(path)):
            continue
        for frame_id in entry.ids.values():
            row = session.get(Frame, frame_id)
            if row is not None:
                row.status, row.error = "missing", "file not found at the last scan (moved or deleted?)"
        gone.add(path)
    return len(gone)
