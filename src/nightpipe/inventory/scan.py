"""The frame inventory: scan folders of FITS files into the ``frames`` table, and query it.

:func:`scan_paths` walks folders recursively, reads only the headers of new or changed
files, normalises them (:mod:`nightpipe.frames.headers`), times them
(:mod:`nightpipe.frames.timing`) and stores one row per image HDU. A rescan skips every
file whose size and modification time are unchanged without opening it; a file whose
size or time changed but whose content hash did not is not re-read either. Files that
vanished are marked ``missing``; unreadable, truncated or non-FITS files are stored with
status ``bad`` and the reason (also recorded as a failed ``scan`` step in ``step_runs``).
Raw files are only ever opened read-only.

Other steps use :func:`light_frames`, :func:`calibration_frames` and
:func:`group_frames`.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import logging
import math
import os
import time
import warnings
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.errors import FitsReadError
from nightpipe.frames.fitsio import FITS_SUFFIXES
from nightpipe.frames.headers import (
    FrameHeader,
    apply_overrides,
    infer_kind_from_pixels,
    normalize_header,
    parse_cards,
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
from nightpipe.store.steps import record_step

# the package's logger, as before the split: records keep their name (and the "[inventory]" tag)
log = logging.getLogger("nightpipe.inventory")

#: Suffixes scanned (case-insensitive): the FITS ones of nightpipe.frames.fitsio, plus bzip2 variants.
SCAN_SUFFIXES = (*FITS_SUFFIXES, ".fit.bz2", ".fts.bz2")
_COMPRESSED = (".gz", ".bz2")
BLOCK = 2880
_HINT_BAD = "the file is corrupt, truncated or not FITS; re-copy it or move it out of the folder"
CHUNK_FILES = 200
SAMPLE_SIZE = 512
CALIBRATION_KINDS = ("bias", "dark", "flat")
SCAN_STEP = "scan"
#: Image extensions that are not frames: uncertainty, mask and model planes (ours: UNCERT, MASK),
#: Gemini VAR/DQ, astroscrappy SKYFIT, TESS APERTURE...
AUXILIARY_EXTNAMES = frozenset(
    {"UNCERT", "MASK", "VAR", "VARIANCE", "DQ", "ERR", "ERROR", "BPM", "WEIGHT", "WHT", "SKYFIT", "SKY",
     "BKG", "BACKGROUND", "APERTURE", "FLAGS", "IVAR"}
)  # fmt: skip


@dataclass(frozen=True)
class ScanSummary:
    """What a scan did, counted in files.

    Attributes
    ----------
    added
        Files seen for the first time (readable or not).
    updated
        Known files read again: their content changed, they came back after missing, or
        they were normalised with other settings (see :func:`normalisation_digest`).
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
    settings_hash: str | None = None


@dataclass(frozen=True)
class FrameInfo:
    """One image HDU of a file: its index, kept header cards, normalised header, time."""

    hdu: int
    cards: dict[str, Any]
    header: FrameHeader
    time: ExposureTime | None = None
    comments: dict[str, str] = field(default_factory=dict)
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


@dataclass(frozen=True)
class RawHdu:
    """One HDU as read from the raw header blocks: its cards and whether it holds a 2-D image."""

    index: int
    cards: dict[str, Any]
    comments: dict[str, str]
    image: bool


def _open_raw(path: str) -> BinaryIO:
    lower = path.lower()
    if lower.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    if lower.endswith(".bz2"):
        return cast(BinaryIO, bz2.open(path, "rb"))
    return open(path, "rb")


def _has_end(block: bytes) -> bool:
    return any(block[i : i + 80].rstrip() == b"END" for i in range(0, len(block), 80))


def _axes(cards: dict[str, Any], prefix: str) -> list[int]:
    count = cards.get(f"{prefix}NAXIS", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 999:
        raise ValueError(f"bad {prefix}NAXIS = {count!r}")
    axes = [cards.get(f"{prefix}NAXIS{i}") for i in range(1, count + 1)]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in axes):
        raise ValueError(f"bad {prefix}NAXISn values {axes!r}")
    return [int(n) for n in axes if n is not None]


def _data_bytes(cards: dict[str, Any]) -> int:
    """Size of an HDU's data (unpadded), from BITPIX, NAXISn, PCOUNT and GCOUNT."""
    axes = _axes(cards, "")
    bitpix = cards.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise ValueError(f"bad BITPIX = {bitpix!r}")
    if not axes:
        return 0
    if cards.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]
    pcount, gcount = cards.get("PCOUNT", 0), cards.get("GCOUNT", 1)
    pcount = pcount if isinstance(pcount, int) else 0
    gcount = gcount if isinstance(gcount, int) else 1
    return abs(int(bitpix)) // 8 * gcount * (pcount + math.prod(axes))


def _holds_image(cards: dict[str, Any], index: int) -> bool:
    xtension = str(cards.get("XTENSION", "")).strip().upper()
    if xtension == "BINTABLE" and cards.get("ZIMAGE") is True:
        axes = _axes(cards, "Z")
    elif index == 0 or xtension in {"IMAGE", "IUEIMAGE"}:
        axes = _axes(cards, "")
    else:
        return False
    return len(axes) >= 2 and axes[0] > 0 and axes[1] > 0 and all(n == 1 for n in axes[2:])


def read_raw_headers(path: str) -> list[RawHdu]:
    """Read every HDU header of a FITS file (plain, gzip or bzip2) without touching the data.

    Header blocks are parsed with :func:`nightpipe.frames.headers.parse_cards` and the
    data of each HDU is skipped by seeking; a file whose data end beyond its size is
    truncated. Bytes after the last HDU that do not start an extension are ignored, as
    astropy does.

    Raises
    ------
    FitsReadError
        Not FITS, a truncated header or data, or impossible structural keywords.
    """
    size = None if path.lower().endswith(_COMPRESSED) else os.path.getsize(path)
    hdus: list[RawHdu] = []
    try:
        with _open_raw(path) as handle:
            offset = 0
            while True:
                header = bytearray()
                while True:
                    block = handle.read(BLOCK)
                    if not header and hdus and not block.startswith(b"XTENSION="):
                        return hdus  # end of file, or trailing bytes that start no extension
                    if len(block) < BLOCK:
                        what = "empty file" if offset == 0 and not block else "truncated header"
                        raise FitsReadError(f"{what} (HDU {len(hdus)})", path=path, hint=_HINT_BAD)
                    if not header:
                        marker = b"XTENSION=" if hdus else b"SIMPLE  ="
                        if block[:9] != marker:
                            if hdus:
                                return hdus
                            raise FitsReadError("not a FITS file (no SIMPLE card)", path=path, hint=_HINT_BAD)
                    header += block
                    if _has_end(block):
                        break
                cards, comments, _ = parse_cards(bytes(header))
                data = _data_bytes(cards)
                hdus.append(RawHdu(len(hdus), cards, comments, _holds_image(cards, len(hdus))))
                offset += len(header)
                data_end = offset + data
                offset += -(-data // BLOCK) * BLOCK
                if size is not None:
                    if data_end > size:
                        raise FitsReadError(
                            f"truncated file: HDU {len(hdus) - 1} needs {data_end} bytes, "
                            f"the file has {size}",
                            path=path,
                            hint="re-copy it from the camera",
                        )
                    if offset >= size:
                        return hdus
                handle.seek(offset)
                if size is None and handle.tell() < data_end:
                    raise FitsReadError(f"truncated file (HDU {len(hdus) - 1})", path=path, hint=_HINT_BAD)
    except FitsReadError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise FitsReadError(f"not a readable FITS file ({exc})", path=path, hint=_HINT_BAD) from None


def read_file_frames(path: str, settings: Settings) -> list[FrameInfo]:
    """Read the headers of every image HDU of a file and normalise them (no pixel data read,
    except a central cut-out when nothing in the header or name tells the frame's kind).

    Each extension's cards are those of the primary header updated with the extension's.
    Extensions named in :data:`AUXILIARY_EXTNAMES` (uncertainty, mask, variance planes)
    are not frames and are skipped. Camera overrides of ``settings.camera.overrides`` are
    applied before normalising.

    Raises
    ------
    FitsReadError
        The file is not FITS, is truncated, or holds no 2-D image.
    """
    name = os.path.basename(path)
    raw = read_raw_headers(path)
    primary = raw[0]
    frames: list[FrameInfo] = []
    for hdu in raw:
        if not hdu.image or str(hdu.cards.get("EXTNAME", "")).strip().upper() in AUXILIARY_EXTNAMES:
            continue
        cards = hdu.cards if hdu.index == 0 else {**primary.cards, **hdu.cards}
        cards = apply_overrides(cards, settings.camera.overrides)
        comments = primary.comments | hdu.comments
        header = normalize_header(cards, filename=name, comments=comments)
        if header.kind == "unknown" and header.kind_inferred:
            header = _kind_from_pixels(path, hdu.index, header)
        frames.append(FrameInfo(hdu.index, cards, header, comments=comments))
    if not frames:
        cubes = [h for h in raw if not h.image and _is_cube(h.cards)]
        if cubes:
            shape = "x".join(
                str(cubes[0].cards.get(f"NAXIS{i}")) for i in range(1, cubes[0].cards["NAXIS"] + 1)
            )
            raise FitsReadError(
                f"HDU {cubes[0].index} is a {shape} cube, not a 2-D frame (a debayered colour image?)",
                path=path,
                hint="scan the raw single-plane frames, or split the planes into separate files",
            )
        raise FitsReadError(
            "no 2-D image frame in any HDU (only tables, or uncertainty/mask planes)",
            path=path,
            hint="move it out of the night folder if it is not a frame",
        )
    return frames


def _is_cube(cards: dict[str, Any]) -> bool:
    naxis = cards.get("NAXIS")
    if not isinstance(naxis, int) or naxis < 3 or str(cards.get("XTENSION", "IMAGE")).strip() != "IMAGE":
        return False
    return all(isinstance(cards.get(f"NAXIS{i}"), int) for i in range(1, naxis + 1))


def _kind_from_pixels(path: str, index: int, header: FrameHeader) -> FrameHeader:
    """Classify from a central cut-out (big images: read through astropy's section, only those rows)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, mode="readonly", memmap=False) as hdul:
                hdu = hdul[index]
                ny, nx = hdu.shape[-2:]
                y0, x0 = max(ny // 2 - SAMPLE_SIZE // 2, 0), max(nx // 2 - SAMPLE_SIZE // 2, 0)
                window = (..., slice(y0, y0 + SAMPLE_SIZE), slice(x0, x0 + SAMPLE_SIZE))
                small = math.prod(hdu.shape) * abs(int(hdu.header.get("BITPIX", 16))) // 8 <= 64 << 20
                # one read of a small image beats astropy's row-by-row section reads
                cut = np.asarray((hdu.data if small else hdu.section)[window], dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError, AttributeError, EOFError) as exc:
        log.debug("%s: cannot sample the pixels of HDU %d: %s", path, index, exc)
        return header
    kind, reason = infer_kind_from_pixels(cut.reshape(cut.shape[-2:]), header.exptime)
    return replace(header, kind=kind, kind_source=reason[:64])


# --------------------------------------------------------------------------- scan

#: Bump when the normalisation rules change, so that the next scan re-reads every file.
NORMALISATION_VERSION = 1


def normalisation_digest(settings: Settings) -> str:
    """A short hash of what shapes a frame's row besides its bytes: the normalisation version,
    the camera overrides, the observatory and the targets' coordinates. Rows written with
    another digest are re-read (not re-hashed) by the next scan.

    Examples
    --------
    >>> normalisation_digest(Settings()) == normalisation_digest(Settings())
    True
    """
    data = {
        "version": NORMALISATION_VERSION,
        "overrides": [rule.model_dump() for rule in settings.camera.overrides],
        "observatory": settings.observatory.model_dump(),
        "targets": [(t.name, t.ra, t.dec) for t in settings.timeseries.targets],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def scan_paths(
    paths: Sequence[Path | str],
    settings: Settings,
    db: Database,
    *,
    progress: Progress | None = None,
    force: bool = False,
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
    force
        Re-read the headers of every file, changed or not (hashes are kept when the size
        and time are unchanged).

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
    digest = normalisation_digest(settings)
    progress.start(len(files), "scanning")
    pool = ThreadPoolExecutor(max_workers=settings.parallel.threads, thread_name_prefix="nightpipe-hash")
    try:
        todo: list[tuple[str, os.stat_result, str]] = []
        for path in files:
            outcome = _triage(path, known.get(path), "" if force else digest)
            if outcome is None:
                counts["unchanged"] += 1
                progress.advance(os.path.basename(path))
                continue
            todo.append((path, *outcome))
            if len(todo) >= CHUNK_FILES:
                _process_chunk(todo, known, settings, db, counts, progress, pool)
                todo = []
        if todo:
            _process_chunk(todo, known, settings, db, counts, progress, pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
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


def _triage(path: str, entry: _Known | None, digest: str) -> tuple[os.stat_result, str] | None:
    """``None`` when the file is unchanged (nothing to read); else its stat and the reason:
    ``added``, ``updated`` (back after missing), ``changed`` (size or time), ``settings``
    (same file, normalised with other settings)."""
    try:
        stat = os.stat(path)
    except OSError:  # vanished between the walk and now: the next scan marks it missing
        return None
    if entry is None:
        return stat, "added"
    if entry.status == "missing":
        return stat, "updated"
    if entry.size == stat.st_size and entry.mtime == stat.st_mtime:
        return None if entry.settings_hash == digest else (stat, "settings")
    return stat, "changed"


def _hash(path: str) -> tuple[str | None, str | None]:
    """``(sha1, None)`` or ``(None, reason)`` when the file cannot be read."""
    try:
        return file_sha1(path), None
    except OSError as exc:
        return None, f"cannot read: {exc}"


def _process_chunk(
    todo: list[tuple[str, os.stat_result, str]],
    known: dict[str, _Known],
    settings: Settings,
    db: Database,
    counts: dict[str, int],
    progress: Progress,
    pool: ThreadPoolExecutor,
) -> None:
    # content hashes run in threads (hashlib and file reads release the GIL) while the
    # headers are parsed here
    hashes = {path: pool.submit(_hash, path) for path, _, reason in todo if reason != "settings"}
    digest = normalisation_digest(settings)
    results: list[tuple[FileResult, str]] = []
    touched_only: list[tuple[str, os.stat_result]] = []
    for path, stat, reason in todo:
        entry = known.get(path)
        touched = reason == "changed" and entry is not None and entry.sha1 is not None
        if touched and entry is not None and hashes[path].result()[0] == entry.sha1:
            touched_only.append((path, stat))  # same bytes, only the time changed
            counts["unchanged"] += 1
            progress.advance(os.path.basename(path))
            continue
        result = FileResult(path, stat.st_size, stat.st_mtime, "", settings_hash=digest)
        try:
            result.frames = read_file_frames(path, settings)
        except FitsReadError as exc:
            result.error = str(exc)
        results.append((result, reason))
        progress.advance(os.path.basename(path))
    for result, reason in results:
        entry = known.get(result.path)
        if reason == "settings" and entry is not None:  # same bytes: the stored hash stands
            sha1, problem = entry.sha1, None
        else:
            sha1, problem = hashes[result.path].result()
        result.sha1 = sha1 or ""
        if problem is not None:
            result.frames, result.error = [], str(FitsReadError(problem, path=result.path))
        if result.error is not None:
            log.warning("%s", result.error)
    _add_times(results, settings)
    try:
        with db.session() as session:
            written = _write_chunk(session, touched_only, results, known, one_by_one=False)
    except SQLAlchemyError as exc:  # one row the database refuses: store file by file
        log.warning("storing %d files at once failed (%s); storing them one by one", len(results), exc)
        with db.session() as session:
            written = _write_chunk(session, touched_only, results, known, one_by_one=True)
    for key, value in written.items():
        counts[key] += value


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
            counts["bad"] += result.error is not None
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
        counts["bad"] += result.error is not None
    return dict(counts)


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
        if was_bad:  # readable again: the earlier failure no longer stands
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
    """Rows of bad (unreadable) and missing files, by path."""
    query = select(Frame).where(Frame.status != "ok").order_by(Frame.path, Frame.hdu)
    return list(session.scalars(query))
