"""The frame inventory: scan folders of FITS files into the ``frames`` table, and query it.

:func:`scan_paths` walks folders recursively, reads only the headers of new or changed
files, normalises them (:mod:`nightpipe.frames.headers`), times them
(:mod:`nightpipe.frames.timing`) and stores one row per image HDU. A rescan skips every
file whose size and modification time are unchanged without opening it; a file whose
size or time changed but whose content hash did not is not re-read either. Files that
vanished are marked ``missing``; unreadable, truncated or non-FITS files are stored with
status ``bad`` and the reason. Raw files are only ever opened read-only.

Other steps use :func:`light_frames`, :func:`calibration_frames` and
:func:`group_frames`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import FITS_SUFFIXES
from nightpipe.frames.headers import (
    FrameHeader,
    apply_overrides,
    header_cards,
    header_comments,
    infer_kind_from_pixels,
    normalize_header,
)
from nightpipe.frames.timing import (
    ExposureTime,
    barycentric_times,
    exposure_mid,
    match_target,
    night_of,
    resolve_location,
)
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.base import utcnow
from nightpipe.store.db import Database
from nightpipe.store.models import Frame

log = logging.getLogger(__name__)

#: Suffixes scanned (case-insensitive): the FITS ones of nightpipe.frames.fitsio, plus bzip2 variants.
SCAN_SUFFIXES = (*FITS_SUFFIXES, ".fit.bz2", ".fts.bz2")
_COMPRESSED = (".gz", ".bz2", ".zip")
CHUNK_FILES = 200
SAMPLE_SIZE = 512
CALIBRATION_KINDS = ("bias", "dark", "flat")


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did, counted in files.

    Attributes
    ----------
    added
        Files seen for the first time (readable or not).
    updated
        Known files whose content changed (or that came back after missing), read again.
    unchanged
        Known files not read again (same size and time, or same content hash).
    missing
        Known files no longer found, now marked ``missing``.
    bad
        Files read in this scan that are unreadable, truncated, not FITS or hold no image.
    frames
        Image rows written in this scan (a multi-extension file gives several).
    seconds
        Wall-clock duration.
    """

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing: int = 0
    bad: int = 0
    frames: int = 0
    seconds: float = 0.0

    @property
    def files(self) -> int:
        """Files seen by the scan (everything but the missing ones)."""
        return self.added + self.updated + self.unchanged


@dataclass
class FileResult:
    """The frames read from one file, or why it could not be read."""

    path: str
    size: int
    mtime: float
    sha1: str
    frames: list[FrameInfo] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class FrameInfo:
    """One image HDU of a file: its index, kept header cards, normalised header, time."""

    hdu: int
    cards: dict[str, Any]
    header: FrameHeader
    time: ExposureTime | None = None
    jd_utc: float | None = None
    bjd_tdb: float | None = None
    night: str | None = None


# --------------------------------------------------------------------------- files


def is_scannable(name: str) -> bool:
    """True for file names the scan reads (``.fits .fit .fts .fz .fits.gz .mt``..., any case).

    Examples
    --------
    >>> is_scannable("HATP-32171220013343.FITS"), is_scannable("notes.txt")
    (True, False)
    """
    lower = name.lower()
    return not lower.startswith(".") and any(lower.endswith(s) for s in SCAN_SUFFIXES)


def iter_fits_files(paths: Iterable[Path | str]) -> Iterator[str]:
    """Absolute paths of the FITS files under ``paths`` (files or folders, recursively, sorted).

    Hidden files and folders are skipped; symbolic links to files are followed, links to
    folders are not (no loops). A file given explicitly is yielded whatever its name.
    """
    for root in paths:
        top = os.path.abspath(os.fspath(root))
        if os.path.isfile(top):
            yield top
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if is_scannable(name):
                    yield os.path.join(folder, name)


def file_sha1(path: str, chunk_size: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes, read in chunks."""
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def read_file_frames(path: str, settings: Settings) -> list[FrameInfo]:
    """Read the headers of every image HDU of a file and normalise them (no pixel data read,
    except a central cut-out when nothing in the header or name tells the frame's kind).

    Each extension's cards are those of the primary header updated with the extension's.
    Camera overrides of ``settings.camera.overrides`` are applied before normalising.

    Raises
    ------
    FitsReadError
        The file is not FITS, is truncated, or holds no 2-D image.
    """
    name = os.path.basename(path)
    compressed = name.lower().endswith(_COMPRESSED)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=True) as hdul:
                frames = _frames_of(hdul, path, name, settings, compressed)
    except FitsReadError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError, KeyError) as exc:
        raise FitsReadError(
            f"not a readable FITS file ({exc.__class__.__name__}: {exc})",
            path=path,
            hint="the file is corrupt, truncated or not FITS; re-copy it or move it out of the folder",
        ) from None
    for warning in caught:
        text = str(warning.message)
        if "truncated" in text.lower():
            raise FitsReadError(f"truncated file ({text})", path=path, hint="re-copy it from the camera")
        log.debug("%s: %s", path, text)
    if not frames:
        raise FitsReadError(
            "no 2-D image in any HDU (a table or an empty file?)",
            path=path,
            hint="move it out of the night folder if it is not a frame",
        )
    return frames


def _frames_of(
    hdul: fits.HDUList, path: str, name: str, settings: Settings, compressed: bool
) -> list[FrameInfo]:
    frames: list[FrameInfo] = []
    primary: dict[str, Any] = {}
    size = os.path.getsize(path)
    for index, hdu in enumerate(hdul):
        head = hdu.header
        if index == 0:
            primary = header_cards(head)
        if not compressed:
            info = hdu.fileinfo()
            if info is not None and info["datLoc"] + info["datSpan"] > size:
                raise FitsReadError(
                    f"truncated file: HDU {index} needs {info['datLoc'] + info['datSpan']} bytes, "
                    f"the file has {size}",
                    path=path,
                    hint="re-copy it from the camera",
                )
        if not _is_image(hdu):
            continue
        cards = dict(primary)
        if index > 0:
            cards.update(header_cards(head))
        cards = apply_overrides(cards, settings.camera.overrides)
        comments = header_comments(hdul[0].header) | header_comments(head)
        header = normalize_header(cards, filename=name, comments=comments)
        if header.kind == "unknown" and header.kind_inferred:
            header = _kind_from_pixels(hdu, header)
        frames.append(FrameInfo(index, cards, header))
    return frames


def _is_image(hdu: Any) -> bool:
    if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        return False
    shape = hdu.shape
    return len(shape) >= 2 and shape[-1] > 0 and shape[-2] > 0 and all(n == 1 for n in shape[:-2])


def _kind_from_pixels(hdu: Any, header: FrameHeader) -> FrameHeader:
    ny, nx = hdu.shape[-2:]
    y0, x0 = max(ny // 2 - SAMPLE_SIZE // 2, 0), max(nx // 2 - SAMPLE_SIZE // 2, 0)
    try:
        cut = np.asarray(hdu.section[..., y0 : y0 + SAMPLE_SIZE, x0 : x0 + SAMPLE_SIZE], dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
        log.debug("cannot sample pixels of HDU: %s", exc)
        return header
    cut = cut.reshape(cut.shape[-2:])
    kind, reason = infer_kind_from_pixels(cut, header.exptime)
    return replace(header, kind=kind, kind_source=reason[:64])


# --------------------------------------------------------------------------- scan


def scan_paths(
    paths: Sequence[Path | str],
    settings: Settings,
    db: Database,
    *,
    progress: Progress | None = None,
) -> ScanSummary:
    """Scan files and folders into the ``frames`` table, incrementally.

    Parameters
    ----------
    paths
        Files and folders (walked recursively).
    settings
        The settings (camera overrides, observatory, targets).
    db
        The database (:func:`nightpipe.store.open_database`).
    progress
        Receives one advance per file.

    Returns
    -------
    ScanSummary
        Counts of added, updated, unchanged, missing and bad files.

    Examples
    --------
    >>> db = open_database("sqlite:///night.sqlite")  # doctest: +SKIP
    >>> scan_paths(["raw/2017-12-19"], settings, db).added  # doctest: +SKIP
    142
    """
    started = time.perf_counter()
    progress = progress or NullProgress()
    files = list(dict.fromkeys(iter_fits_files(paths)))
    roots = [os.path.abspath(os.fspath(p)) for p in paths]
    with db.session() as session:
        known = _known_files(session, roots)
    counts: dict[str, int] = defaultdict(int)
    progress.start(len(files), "scanning")
    try:
        todo: list[tuple[str, os.stat_result, str]] = []
        for path in files:
            outcome = _triage(path, known.get(path))
            if outcome is None:
                counts["unchanged"] += 1
                progress.advance(os.path.basename(path))
                continue
            todo.append((path, *outcome))
            if len(todo) >= CHUNK_FILES:
                _process_chunk(todo, known, settings, db, counts, progress)
                todo = []
        if todo:
            _process_chunk(todo, known, settings, db, counts, progress)
    finally:
        progress.stop()
    seen = set(files)
    with db.session() as session:
        counts["missing"] = _mark_missing(session, roots, seen)
    summary = ScanSummary(
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        missing=counts["missing"],
        bad=counts["bad"],
        frames=counts["frames"],
        seconds=time.perf_counter() - started,
    )
    log.info(
        "scan: %d added, %d updated, %d unchanged, %d missing, %d bad (%d frames) in %.1f s",
        summary.added, summary.updated, summary.unchanged, summary.missing, summary.bad,
        summary.frames, summary.seconds,
    )  # fmt: skip
    return summary


@dataclass
class _Known:
    """What the database knows of one file (all its rows)."""

    size: int
    mtime: float
    sha1: str | None
    status: str
    ids: dict[int, int]


def _known_files(session: Session, roots: Sequence[str]) -> dict[str, _Known]:
    conditions = []
    for root in roots:
        conditions.append(Frame.path == root)
        conditions.append(Frame.path.startswith(root.rstrip(os.sep) + os.sep, autoescape=True))
    rows = session.execute(
        select(Frame.id, Frame.path, Frame.hdu, Frame.size, Frame.mtime, Frame.sha1, Frame.status).where(
            or_(*conditions)
        )
    )
    known: dict[str, _Known] = {}
    for frame_id, path, hdu, size, mtime, sha1, status in rows:
        entry = known.get(path)
        if entry is None:
            known[path] = _Known(size, mtime, sha1, status, {hdu: frame_id})
        else:
            entry.ids[hdu] = frame_id
            if status == "missing":
                entry.status = status
    return known


def _triage(path: str, entry: _Known | None) -> tuple[os.stat_result, str] | None:
    """``None`` when the file is unchanged (nothing to read); else its stat and the reason."""
    try:
        stat = os.stat(path)
    except OSError:  # vanished between the walk and now: the next scan marks it missing
        return None
    if entry is None:
        return stat, "added"
    if entry.status == "missing":
        return stat, "updated"
    if entry.size == stat.st_size and entry.mtime == stat.st_mtime:
        return None
    return stat, "changed"


def _process_chunk(
    todo: list[tuple[str, os.stat_result, str]],
    known: dict[str, _Known],
    settings: Settings,
    db: Database,
    counts: dict[str, int],
    progress: Progress,
) -> None:
    results: list[tuple[FileResult, str]] = []
    touched_only: list[tuple[str, os.stat_result]] = []
    for path, stat, reason in todo:
        try:
            sha1 = file_sha1(path)
        except OSError as exc:
            results.append(
                (FileResult(path, stat.st_size, stat.st_mtime, "", error=f"cannot read: {exc}"), reason)
            )
            progress.advance(os.path.basename(path))
            continue
        entry = known.get(path)
        if reason == "changed" and entry is not None and entry.sha1 == sha1:
            touched_only.append((path, stat))
            counts["unchanged"] += 1
            progress.advance(os.path.basename(path))
            continue
        result = FileResult(path, stat.st_size, stat.st_mtime, sha1)
        try:
            result.frames = read_file_frames(path, settings)
        except FitsReadError as exc:
            result.error = str(exc)
            log.warning("%s", exc)
        results.append((result, reason))
        progress.advance(os.path.basename(path))
    _add_times(results, settings)
    with db.session() as session:
        for path, stat in touched_only:
            for frame_id in known[path].ids.values():
                row = session.get(Frame, frame_id)
                if row is not None:
                    row.size, row.mtime = stat.st_size, stat.st_mtime
        for result, reason in results:
            written = _store(session, result, known.get(result.path))
            counts["frames"] += written
            counts["added" if reason == "added" else "updated"] += 1
            if result.error is not None:
                counts["bad"] += 1


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
                frame.cards, frame.header.exptime, utc_offset_hours=observatory.utc_offset_hours
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


def _store(session: Session, result: FileResult, entry: _Known | None) -> int:
    """Write the rows of one file; returns the number of image rows written."""
    ids = dict(entry.ids) if entry is not None else {}
    now = utcnow()
    if result.error is not None:
        row = _row_for(session, ids, 0, result.path)
        _reset(row)
        row.size, row.mtime, row.sha1 = result.size, result.mtime, result.sha1 or None
        row.status, row.error, row.scanned_at = "bad", result.error, now
        _delete_others(session, ids, keep={0})
        return 0
    for frame in result.frames:
        row = _row_for(session, ids, frame.hdu, result.path)
        _fill(row, result, frame, now)
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
    "readout_mode", "ccd_temp", "set_temp", "naxis1", "naxis2", "object", "ra", "dec", "observer",
    "site", "telescope", "instrument", "date_obs",
)  # fmt: skip


def _reset(row: Frame) -> None:
    for name in _HEADER_COLUMNS:
        setattr(row, name, None)
    row.kind, row.kind_inferred = "unknown", False
    row.mid_utc = row.jd_utc = row.bjd_tdb = row.time_source = row.night = row.header = None


def _fill(row: Frame, result: FileResult, frame: FrameInfo, now: datetime) -> None:
    row.size, row.mtime, row.sha1 = result.size, result.mtime, result.sha1
    row.status, row.error, row.scanned_at = "ok", None, now
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
                row.status = "missing"
        gone.add(path)
    return len(gone)


# --------------------------------------------------------------------------- queries


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


def group_key(frame: Frame) -> GroupKey:
    """The grouping key of a frame: kind, xbin, ybin, filter, exposure (ms), temperature (1 C)."""
    temp = frame.set_temp if frame.set_temp is not None else frame.ccd_temp
    return (
        frame.kind,
        frame.xbin,
        frame.ybin,
        frame.filter,
        None if frame.exptime is None else round(frame.exptime, 3),
        None if temp is None else float(round(temp)),
    )


def group_rows(frames: Iterable[Frame]) -> list[FrameGroup]:
    """Group frames by :func:`group_key`; sorted by kind (bias, dark, flat, light), then the key."""
    buckets: dict[GroupKey, list[Frame]] = defaultdict(list)
    for frame in frames:
        buckets[group_key(frame)].append(frame)
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


def group_frames(session: Session, *, night: str | None = None) -> list[FrameGroup]:
    """Readable frames (of one night or all) grouped by kind x binning x filter x exposure x temperature."""
    query = select(Frame).where(Frame.status == "ok")
    if night is not None:
        query = query.where(Frame.night == night)
    return group_rows(session.scalars(query))


def problem_frames(session: Session) -> list[Frame]:
    """Rows of bad (unreadable) and missing files, by path."""
    query = select(Frame).where(Frame.status != "ok").order_by(Frame.path, Frame.hdu)
    return list(session.scalars(query))
