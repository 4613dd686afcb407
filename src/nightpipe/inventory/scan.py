"""The incremental scan of files and folders into the ``frames`` table (:func:`scan_paths`).

Each file is triaged by its size, time and settings digest; new and changed files are read
(headers only, :mod:`nightpipe.inventory.classify`) while their content hashes run in threads,
then timed (:mod:`nightpipe.inventory.times`) and stored (:mod:`nightpipe.inventory.rows`) in chunks.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from nightpipe.config import Settings
from nightpipe.errors import FitsReadError
from nightpipe.inventory.classify import read_file_frames
from nightpipe.inventory.duplicates import mark_duplicates
from nightpipe.inventory.notes import check_frame
from nightpipe.inventory.rows import FileResult, _Known, _known_files, _mark_missing, _write_chunk
from nightpipe.inventory.times import _add_times
from nightpipe.inventory.walk import file_sha1, iter_fits_files
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database

# the package's logger, as before the split: records keep their name (and the "[inventory]" tag)
log = logging.getLogger("nightpipe.inventory")

CHUNK_FILES = 200


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
        Files read in this scan that are unreadable, truncated, not FITS or hold no image, or
        whose header makes a frame unusable (an exposure time that is not a number...).
    frames
        Image rows written in this scan (a multi-extension file gives several).
    duplicates
        Files that are byte-identical copies of another known file (used once, as the other).
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
    duplicates: int = 0

    @property
    def files(self) -> int:
        """Files seen by the scan (everything but the missing ones)."""
        return self.added + self.updated + self.unchanged


#: Bump when the normalisation rules change, so that the next scan re-reads every file.
NORMALISATION_VERSION = 2


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
        broken: list[tuple[FileResult, str]] = []
        for path in files:
            outcome = _triage(path, known.get(path), "" if force else digest)
            if isinstance(outcome, FileResult):
                log.warning("%s", outcome.error)
                broken.append((outcome, "added" if path not in known else "changed"))
                progress.advance(os.path.basename(path))
                continue
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
        if broken:
            with db.session() as session:
                for key, value in _write_chunk(session, [], broken, known, one_by_one=False).items():
                    counts[key] += value
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.stop()
    seen = set(files)
    with db.session() as session:
        counts["missing"] = _mark_missing(session, roots, seen)
        counts["duplicates"] = mark_duplicates(session)
    summary = ScanSummary(
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        missing=counts["missing"],
        bad=counts["bad"],
        frames=counts["frames"],
        seconds=time.perf_counter() - started,
        duplicates=counts["duplicates"],
    )
    log.info(
        "scan: %d added, %d updated, %d unchanged, %d missing, %d bad, %d duplicates (%d frames) in %.1f s",
        summary.added, summary.updated, summary.unchanged, summary.missing, summary.bad,
        summary.duplicates, summary.frames, summary.seconds,
    )  # fmt: skip
    return summary


def _triage(path: str, entry: _Known | None, digest: str) -> tuple[os.stat_result, str] | FileResult | None:
    """``None`` when the file is unchanged (nothing to read); else its stat and the reason:
    ``added``, ``updated`` (back after missing), ``changed`` (size or time), ``settings``
    (same file, normalised with other settings); a bad :class:`FileResult` for a name that
    cannot even be looked at (a symbolic link loop, a link to nothing, no permission)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if not os.path.islink(path):  # vanished between the walk and now: the next scan marks it missing
            return None
        why = f"a symbolic link to a missing file ({os.readlink(path)})"
        return _unreadable(path, why, "remove the link, or point it at the real file", digest)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = f"a symbolic link loop ({exc.strerror})"
            return _unreadable(path, why, "remove the link, or point it at the real file", digest)
        return _unreadable(path, f"cannot be read ({exc.strerror})", "check its permissions", digest)
    if entry is None:
        return stat, "added"
    if entry.status == "missing":
        return stat, "updated"
    if entry.size == stat.st_size and entry.mtime == stat.st_mtime:
        return None if entry.settings_hash == digest else (stat, "settings")
    return stat, "changed"


def _unreadable(path: str, why: str, hint: str, digest: str) -> FileResult:
    error = str(FitsReadError(why, path=path, hint=hint))
    return FileResult(path, 0, 0.0, "", error=error, settings_hash=digest)


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
    for result, _ in results:
        result.frames = [check_frame(result.path, frame) for frame in result.frames]
        for frame in result.frames:
            for text in (*frame.notes, *([frame.unusable] if frame.unusable else [])):
                log.warning("%s", text)
    try:
        with db.session() as session:
            written = _write_chunk(session, touched_only, results, known, one_by_one=False)
    except SQLAlchemyError as exc:  # one row the database refuses: store file by file
        log.warning("storing %d files at once failed (%s); storing them one by one", len(results), exc)
        with db.session() as session:
            written = _write_chunk(session, touched_only, results, known, one_by_one=True)
    for key, value in written.items():
        counts[key] += value
