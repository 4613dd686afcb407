"""The accounts-and-jobs database: the store's schema (migrated) at ``web.database_url``."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result

from nightpipe.config import Settings
from nightpipe.store.db import Database, open_database


def open_web_database(settings: Settings) -> Database:
    """Open (and migrate) the web app's database; SQLite in the data folder by default."""
    settings.web.data_dir.mkdir(parents=True, exist_ok=True)
    return open_database(settings.web.database())


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed."""
    return int(cast(CursorResult[Any], result).rowcount)
