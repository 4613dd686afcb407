"""The database of frames, masters and measurements (SQLAlchemy 2 + alembic)."""

from nightpipe.store.db import Database, open_database

__all__ = ["Database", "open_database"]
