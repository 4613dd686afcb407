"""Unattended use: copy new files from an incoming folder into the archive by night, then process.

``ingest`` is one pass (cron-friendly); ``watch`` repeats it until stopped. A file is
copied to ``ARCHIVE/<night>/<its path under INCOMING>`` through a temporary file, its
checksum verified against the source, then renamed into place; the source is deleted
only with ``move=True`` and only after that verification. A manifest remembers what was
ingested (by size, mtime and checksum) so each pass reads only new or changed files.
Files still being written (changed within ``settle_s`` seconds) wait for the next pass, and so
does a file whose size or modification time changed while it was copied (its size and mtime are
read again after the copy, before the copy is renamed into place). A destination is always
inside the archive: a path that would climb out of it (``..``, an absolute name) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.frames.timing import exposure_mid, night_of, resolve_location
from nightpipe.inventory import is_scannable, read_file_frames
from nightpipe.pipeline.interrupt import StopRequest

log = logging.getLogger(__name__)
MANIFEST = ".nightpipe-ingested.json"
UNDATED = "undated"


@dataclass
class IngestSummary:
    """What one pass did."""

    copied: int = 0
    unchanged: int = 0
    waiting: int = 0
    bad: int = 0
    moved: int = 0
    nights: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def file_night(path: Path, settings: Settings) -> str:
    """The observing night of a frame from its header (``undated`` when it has no usable time)."""
    frames = read_file_frames(str(path), settings)
    head = frames[0]
    stamp = exposure_mid(
        head.cards, head.header.exptime, utc_offset_hours=settings.observatory.utc_offset_hours
    )
    if stamp is None:
        return UNDATED
    _, lon, _, _ = resolve_location(
        head.header.site_lat,
        head.header.site_lon,
        head.header.site_elev,
        settings.observatory,
        local_offset_hours=stamp.local_offset_hours,
    )
    return night_of(stamp.mid_utc, lon)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StillWrittenError(NightpipeError):
    """The source changed (size or modification time) while it was copied: it is still being
    written, and waits for a later pass."""


def _same_file_state(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _changed(path: Path, before: os.stat_result) -> bool:
    try:
        return not _same_file_state(before, path.stat())
    except OSError:
        return False


def archive_destination(archive: Path, night: str, relative: Path | str) -> Path:
    """``archive/<night>/<relative>``, refused when it would not be inside ``archive/<night>``.

    Raises
    ------
    NightpipeError
        For an absolute ``relative``, one that climbs out with ``..``, or a night that is not a
        plain folder name.

    Examples
    --------
    >>> str(archive_destination(Path("/a"), "2017-12-19", "cam 1/x.fits"))
    '/a/2017-12-19/cam 1/x.fits'
    >>> archive_destination(Path("/a"), "2017-12-19", "../x.fits")
    Traceback (most recent call last):
    ...
    nightpipe.errors.NightpipeError: ../x.fits: would be written outside the archive folder /a/2017-12-19 ...
    """
    rel = Path(relative)
    folder = archive / night
    bad_night = night in ("", ".", "..") or "/" in night or "\\" in night
    if bad_night or rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise NightpipeError(
            f"would be written outside the archive folder {folder}",
            path=relative,
            hint="rename the file (no '..' and no absolute path); it is left where it is",
        )
    return folder / rel


def verified_copy(source: Path, destination: Path, before: os.stat_result | None = None) -> str:
    """Copy ``source`` to ``destination`` atomically and verify the copy's SHA-1; returns it.

    ``before`` is the source's state when it was chosen (``os.stat``): when its size or
    modification time differs after the copy, the copy is dropped and :class:`StillWrittenError` raised.

    Raises
    ------
    StillWrittenError
        When the source changed while it was copied (nothing is left behind).
    NightpipeError
        When the copy fails or its checksum differs from the source's (nothing is left behind).
    """
    try:
        before = before or source.stat()
        expected = _sha1(source)
        with atomic_path(destination, suffix=".part") as tmp:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            if not _same_file_state(before, source.stat()):
                raise StillWrittenError(
                    "changed while it was copied: still being written",
                    path=source,
                    hint="nothing to do: it is copied by a later pass, once it has stopped changing",
                )
            got = _sha1(tmp)
            if got != expected:
                raise NightpipeError(
                    f"copy verification failed (sha1 {got} != {expected})",
                    path=source,
                    hint="check the disk; the file will be retried on the next pass",
                )
        shutil.copystat(source, destination)
    except OSError as exc:
        raise NightpipeError(
            f"cannot copy into the archive ({exc.strerror or exc})",
            path=source,
            hint="check that the file still exists and the archive is writable",
        ) from None
    return expected


def _load_manifest(archive: Path) -> dict[str, dict[str, object]]:
    path = archive / MANIFEST
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _save_manifest(archive: Path, manifest: dict[str, dict[str, object]]) -> None:
    with atomic_open(archive / MANIFEST, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)


def ingest(
    incoming: Path,
    archive: Path,
    settings: Settings,
    *,
    move: bool = False,
    settle_s: float = 30.0,
    clock: Callable[[], float] = time.time,
) -> IngestSummary:
    """Copy new frames from ``incoming`` into ``archive/<night>/`` (one pass)."""
    if not incoming.is_dir():
        raise NightpipeError("incoming folder not found", path=incoming, hint="create it or fix the path")
    archive.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(archive)
    summary = IngestSummary()
    now = clock()
    for path in sorted(p for p in incoming.rglob("*") if p.is_file() and is_scannable(p.name)):
        key = str(path.resolve())
        stat = path.stat()
        seen = manifest.get(key)
        if seen is not None and seen.get("size") == stat.st_size and seen.get("mtime") == stat.st_mtime:
            summary.unchanged += 1
            continue
        if now - stat.st_mtime < settle_s:
            summary.waiting += 1
            continue
        try:
            night = file_night(path, settings)
            destination = archive_destination(archive, night, path.relative_to(incoming))
            sha1 = verified_copy(path, destination, stat)
        except StillWrittenError as exc:
            summary.waiting += 1
            log.info("%s", exc, extra={"step": "ingest"})
            continue
        except NightpipeError as exc:
            if _changed(path, stat):  # read while it was written (a truncated header, say): not bad
                summary.waiting += 1
                log.info("%s: changed while it was read: still being written", path, extra={"step": "ingest"})
                continue
            summary.bad += 1
            summary.errors.append(str(exc))
            log.warning("%s", exc, extra={"step": "ingest"})
            manifest[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "error": str(exc)}
            continue
        manifest[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "sha1": sha1, "dest": str(destination)}
        summary.copied += 1
        summary.nights.add(night)
        if move:
            path.unlink()
            summary.moved += 1
    _save_manifest(archive, manifest)
    if summary.errors:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(archive / "ingest-errors.log", "a", encoding="utf-8") as handle:
            handle.writelines(f"{stamp} {line}\n" for line in summary.errors)
    return summary


def write_error_log(night_dir: Path, lines: list[str]) -> Path:
    """Append a run's failures to ``<night>/nightpipe-errors.log`` (created when there are any)."""
    path = night_dir / "nightpipe-errors.log"
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"# run {stamp}: {len(lines)} problem(s)\n")
        handle.writelines(f"{line}\n" for line in lines)
    return path


def process_nights(
    settings: Settings, archive: Path, nights: set[str], stop: StopRequest | None = None
) -> dict[str, int]:
    """Run the pipeline on each archive night that received files; returns exit codes by night.

    ``stop`` (from :func:`~nightpipe.pipeline.interrupt.stop_on_signals`) ends the night in hand
    cleanly between two frames, raising :class:`~nightpipe.pipeline.interrupt.Interrupted`.

    Failures (steps, frames, the ingest's own) go to ``<night>/nightpipe-errors.log``.
    """
    from sqlalchemy import select

    from nightpipe.pipeline.night import run_night
    from nightpipe.store.db import open_database
    from nightpipe.store.models import Frame, StepRun

    codes: dict[str, int] = {}
    for night in sorted(nights - {UNDATED}):
        folder = archive / night
        result = run_night(settings, [folder], stop=stop)
        codes[night] = result.exit_code
        lines = [s.error for s in result.steps if s.error]
        db = open_database(settings.database.url)
        try:
            with db.session() as session:
                failed = session.execute(
                    select(StepRun.step, Frame.path, StepRun.reason)
                    .join(Frame, StepRun.frame_id == Frame.id)
                    .where(StepRun.status == "failed", Frame.path.startswith(str(folder.resolve())))
                ).all()
                bad = session.execute(
                    select(Frame.path, Frame.error).where(
                        Frame.status == "bad", Frame.path.startswith(str(folder.resolve()))
                    )
                ).all()
        finally:
            db.dispose()
        lines += [f"{step}: {Path(path).name}: {reason}" for step, path, reason in failed]
        lines += [f"scan: {Path(path).name}: {error}" for path, error in bad]
        if lines:
            write_error_log(folder, lines)
    return codes
