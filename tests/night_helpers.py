"""Helpers shared by the end-to-end tests that run whole simulated nights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from nightpipe.config import Settings, load_settings
from nightpipe.store import open_database
from nightpipe.store.base import Base
from nightpipe.store.models_astrometry import PlateSolution

#: ``demo_night(size, n_lights) -> (root, raw)`` (the session fixture of conftest.py)
DemoNight = Callable[[int, int], tuple[Path, Path]]


def root_settings(root: Path, *overrides: str) -> Settings:
    """A simulated night's ``root/nightpipe.toml``, without the environment, with ``--set`` overrides."""
    return load_settings(root / "nightpipe.toml", environ={}, overrides=list(overrides))


def night_settings(root: Path, out: Path, *overrides: str) -> Settings:
    """The demo night's settings in ``root``, with every product and the database under ``out``."""
    return root_settings(
        root,
        f"paths.output={str(out / 'out')!r}",
        f"paths.masters={str(out / 'out' / 'masters')!r}",
        f"database.url='sqlite:///{out / 'db.sqlite'}'",
        *overrides,
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


def plate_solutions(settings: Settings) -> list[PlateSolution]:
    """Every frame's plate solution of the night's database, by path (detached from the session)."""
    db = open_database(settings.database.url)
    try:
        with db.session() as session:
            rows = list(session.scalars(select(PlateSolution).order_by(PlateSolution.path)))
            session.expunge_all()
            return rows
    finally:
        db.dispose()
