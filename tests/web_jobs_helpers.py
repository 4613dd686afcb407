"""Helpers of the web job tests: a registered user whose uploads are the demo night's raw frames."""

from __future__ import annotations

import shutil
from pathlib import Path

from astropy.io import fits

from nightpipe.store.db import Database
from nightpipe.web.accounts import create_user
from nightpipe.web.models import Upload
from nightpipe.web.paths import UserPaths

KINDS = ("bias", "dark", "flat", "light")


def kind_of(path: Path) -> str:
    """The upload summary's kind, from IMAGETYP ("Light Frame" -> "light")."""
    imagetyp = str(fits.getheader(path).get("IMAGETYP", "")).lower()
    return next((k for k in KINDS if k in imagetyp), "unknown")


def user_with_uploads(db: Database, data_dir: Path, name: str, raw: Path) -> tuple[int, dict[str, list[int]]]:
    """Register ``name`` and upload every FITS file under ``raw``; (user id, upload ids by kind)."""
    with db.session() as session:
        user = create_user(session, name, "correct horse battery")
        paths = UserPaths(data_dir, user.id).make()
        ids: dict[str, list[int]] = {}
        for source in sorted(p for p in raw.rglob("*") if p.suffix.lower() in (".fits", ".fit", ".fts")):
            dest = paths.uploads / source.name
            shutil.copy2(source, dest)
            kind = kind_of(dest)
            row = Upload(
                owner_id=user.id,
                name=source.name,
                path=dest.name,
                size=dest.stat().st_size,
                summary={"kind": kind},
            )
            session.add(row)
            session.flush()
            ids.setdefault(kind, []).append(row.id)
        return user.id, ids
