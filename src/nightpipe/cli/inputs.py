"""What a command needs before it can do anything, and which command makes it.

A command run before its inputs exist (``photometry`` before ``calibrate``, ``zeropoints``
before ``photometry``) stops with a :class:`~nightpipe.errors.MissingInputError` (exit 2) that
names what is missing and the command to run, instead of reporting "0 measured".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nightpipe.errors import MissingInputError

if TYPE_CHECKING:
    from nightpipe.config import Settings
    from nightpipe.store.db import Database


def _of(night: str | None) -> str:
    return f" of night {night}" if night else ""


def require_light_frames(db: Database, night: str | None) -> int:
    """The number of scanned light frames (of ``night``); none is a MissingInputError."""
    from sqlalchemy import func, select

    from nightpipe.store.models import Frame

    query = select(func.count()).select_from(Frame).where(Frame.kind == "light", Frame.status == "ok")
    if night is not None:
        query = query.where(Frame.night == night)
    with db.session() as session:
        lights = int(session.scalar(query) or 0)
    if not lights:
        raise MissingInputError(
            f"no light frames{_of(night)} in the database",
            hint="scan the night's folder first: `nightpipe scan RAW_DIR`, or run them all: "
            "`nightpipe run RAW_DIR`",
        )
    return lights


def require_calibrated(db: Database, night: str | None) -> None:
    """Calibrated frames (of ``night``) must exist; else say whether to scan or to calibrate."""
    from nightpipe.store.steps import calibrated_frames

    with db.session() as session:
        if calibrated_frames(session, night):
            return
    lights = require_light_frames(db, night)
    raise MissingInputError(
        f"no calibrated frames{_of(night)} ({lights} light frames scanned)",
        hint="calibrate them first: `nightpipe masters`, then `nightpipe calibrate`",
    )


def require_source_tables(settings: Settings, db: Database, night: str | None) -> None:
    """Source tables (of ``night``) must exist under ``paths.output/sources``; else say which
    step is missing: scan, calibrate or photometry."""
    from nightpipe.frames.fitsio import product_files

    root = Path(settings.paths.output) / "sources"
    folders = (
        [root / night] if night else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    )
    if any(product_files(folder, "*.fits") for folder in folders if folder.is_dir()):
        return
    require_calibrated(db, night)
    raise MissingInputError(
        f"no source tables{_of(night)} in {root}",
        hint="measure the calibrated frames first: `nightpipe photometry`",
    )
