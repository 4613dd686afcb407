"""Opening the database: SQLite (WAL) by default, PostgreSQL by URL; migrations to head."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightpipe.errors import StoreError
from nightpipe.store.migration_heads import is_current

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 0x6E70_6D69  # the advisory lock PostgreSQL migrations wait for ("npmi")
BUSY_S = 30  # how long a write waits for another writer of an SQLite file before giving up


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked": another writer held it for longer than ``BUSY_S``."""
    return "database is locked" in str(exc)


@dataclass(frozen=True)
class Database:
    """An engine and a session factory for one database URL."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")  # BUSY_S
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite files get WAL mode and their folder is created."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"bad database URL {url!r}: {exc}",
            hint="use sqlite:///path/file.sqlite or postgresql+psycopg://user@host/db",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


@contextmanager
def _one_migration_at_a_time(connection: Connection) -> Iterator[None]:
    """Wait for any other process migrating the same database: two runs started at once would
    both find no schema and both create it (PostgreSQL: a transaction-level advisory lock; an
    SQLite file: a blocking ``flock`` on a file beside it, as SQLite cannot wait for a writer
    inside a transaction that has already read)."""
    url = connection.engine.url
    if url.get_backend_name() != "sqlite":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield
        return
    if not url.database or url.database == ":memory:":
        yield
        return
    file = Path(url.database).expanduser()
    with open(file.with_name(f".{file.name}.nightpipe-migrate"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every migration branch (one process at a time)."""
    with engine.connect() as connection:
        if is_current(connection, MIGRATIONS / "versions"):
            return  # nothing to do: alembic (0.4 s of imports) is not needed
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as first, _one_migration_at_a_time(first), engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


def open_database(url: str, *, upgrade: bool = True) -> Database:
    """Open (and by default migrate) the database at ``url``.

    Raises
    ------
    StoreError
        When the database cannot be reached or migrated; the message names the URL.
    """
    engine = make_engine(url)
    try:
        if upgrade:
            migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        if is_locked(exc):
            raise StoreError(
                f"the database {safe_url(url)} stayed locked by another program for {BUSY_S} s",
                hint="find what holds it (a long query, an open SQLite shell) and rerun",
            ) from None
        raise StoreError(
            f"cannot open or migrate database {safe_url(url)}: {exc.__class__.__name__}: {exc}",
            hint="check that the server runs and the URL is right",
        ) from None
    return Database(url=url, engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<bad url>"
