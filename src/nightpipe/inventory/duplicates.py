"""Byte-identical files: used once, the copies marked ``duplicate`` with a note naming both files.

A night folder copied twice, or a frame saved under two names, would otherwise be calibrated,
measured and fitted twice. Files are compared by the SHA-1 of their bytes (``frames.sha1``; of the
decompressed bytes for gzip and bzip2 files, so that ``x.fits`` and ``x.fits.gz`` are duplicates; an
fpack ``.fz`` file is compressed tile by tile and is not compared with its plain twin); of each
set of identical readable files the first scanned (the lowest row id; paths in order within one
scan) is kept, the others get ``status = 'duplicate'``. A copy whose original changed or went away
is readable again: it goes back to ``ok`` and is re-read by the next scan (its notes come back).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightpipe.errors import FitsReadError
from nightpipe.store.models import Frame

# the package's logger, as the rest of the inventory: records keep their name (and the "[inventory]" tag)
log = logging.getLogger("nightpipe.inventory")

DUPLICATE = "duplicate"
_USABLE = ("ok", DUPLICATE)


def duplicate_note(path: str, original: str, sha1: str) -> str:
    """The note of a copy: which file it repeats, and that it is used once.

    Examples
    --------
    >>> duplicate_note("/n/b.fits", "/n/a.fits", "ab" * 20)[:60]
    '/n/b.fits: same bytes as /n/a.fits (SHA-1 abababababab...): '
    >>> duplicate_note("/n/a.fits.gz", "/n/a.fits", "ab" * 20)[:52]
    '/n/a.fits.gz: same bytes, once decompressed, as /n/a'
    """
    same = "same bytes as"
    if any(p.lower().endswith((".gz", ".bz2")) for p in (path, original)):
        same = "same bytes, once decompressed, as"
    return str(
        FitsReadError(
            f"{same} {original} (SHA-1 {sha1[:12]}...): a duplicate, used once as {original}",
            path=path,
            hint="delete one of the two copies if they are not meant to be the same",
        )
    )


def mark_duplicates(session: Session) -> int:
    """Mark every copy of an already known readable file as ``duplicate``, and revive copies whose
    original is gone; returns the number of files now marked duplicate."""
    shared = (
        select(Frame.sha1)
        .where(Frame.status.in_(_USABLE), Frame.sha1.is_not(None))
        .group_by(Frame.sha1)
        .having(func.count(func.distinct(Frame.path)) > 1)
    )
    rows = session.scalars(
        select(Frame).where(Frame.status.in_(_USABLE), Frame.sha1.in_(shared)).order_by(Frame.id)
    ).all()
    groups: dict[str, dict[str, list[Frame]]] = defaultdict(dict)
    for row in rows:
        assert row.sha1 is not None
        groups[row.sha1].setdefault(row.path, []).append(row)
    marked = 0
    for sha1, files in groups.items():
        original, *copies = list(files)  # dicts keep the order of the lowest row id
        for row in files[original]:
            if row.status == DUPLICATE:
                _revive(row)
        for path in copies:
            note = duplicate_note(path, original, sha1)
            for row in files[path]:
                if row.status != DUPLICATE:
                    log.warning("%s", note)
                row.status, row.error = DUPLICATE, note
            marked += 1
    for row in session.scalars(
        select(Frame).where(Frame.status == DUPLICATE, Frame.sha1.not_in(shared) | Frame.sha1.is_(None))
    ):
        _revive(row)
    return marked


def _revive(row: Frame) -> None:
    """A copy that no longer repeats a usable file: readable again, re-read by the next scan."""
    row.status, row.error, row.settings_hash = "ok", None, None
