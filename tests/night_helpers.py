"""Helpers shared by the end-to-end tests that run whole simulated nights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from nightpipe.config import Settings, load_settings
from nightpipe.store import open_database
from nightpipe.store.base import Base

#: ``demo_night(size, n_lights) -> (root, raw)`` (the session fixture of conftest.py)
DemoNight = Callable[[int, int], tuple[Path, Path]]


def night_settings(root: Path, out: Path, *overrides: str) -> Settings:
    """The demo night's settings in ``root``, with every product and the database under ``out``."""
    return load_settings(
        root / "nightpipe.toml",
        environ={},
        overrides=[
            f"paths.output={str(out / 'out')!r}",
            f"paths.masters={str(out / 'out' / 'masters')!r}",
            f"database.url='sqlite:///{out / 'db.sqlite'}'",
            *overrides,
        ],
    )


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows in every table of the database."""
    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            return {
                name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for name, table in Base.metadata.tables.items()
            }
    finally:
        db.dispose()
