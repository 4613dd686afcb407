"""Locks that keep two runs off the same night: a lock file in the output folder, and one on the
database (a lock file beside an SQLite file, an advisory lock on PostgreSQL), so that two runs
with different output folders cannot write the same rows either."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from nightpipe.errors import PipelineError, RunBusyError
from nightpipe.store.db import Database, safe_url

HINT = "wait for it to finish, or stop it; the lock goes away with the process, even after kill -9"


def holder_text() -> str:
    """Who this process is: ``pid 123 on host, started 2026-12-07T08:00:00Z (nightpipe run ...)``."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))[:200]
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started} ({command})"


@contextmanager
def night_lock(folder: Path, name: str = "night") -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock on ``folder/.nightpipe-<name>.lock``.

    The lock is released when the process ends, even after ``kill -9``, because it is an
    ``flock`` on an open file, not the file's existence.

    Raises
    ------
    PipelineError
        When another process holds the lock (the message says who), or the folder cannot be
        written.
    """
    path = folder / f".nightpipe-{name}.lock"
    with _file_lock(path, "this night", "paths.output") as held:
        yield held


@contextmanager
def _file_lock(path: Path, what: str, setting: str) -> Iterator[Path]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise PipelineError(
            f"cannot write in this folder ({exc.strerror or exc})",
            path=path.parent,
            hint=f"make it writable or set {setting} to a folder you can write",
        ) from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunBusyError(
                f"another nightpipe run is working on {what}: {holder}", path=path, hint=HINT
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(holder_text())
        handle.flush()
        yield path
    finally:
        handle.close()


def _advisory_key() -> tuple[int, int]:
    """The two 32-bit keys of the PostgreSQL advisory lock of nightpipe runs (one per database:
    PostgreSQL's advisory locks belong to the database they are taken in)."""
    return zlib.crc32(b"nightpipe") & 0x7FFFFFFF, zlib.crc32(b"run") & 0x7FFFFFFF


@contextmanager
def database_lock(db: Database) -> Iterator[None]:
    """Hold the database's run lock for the block (nothing for an in-memory SQLite database).

    Raises
    ------
    PipelineError
        When another run holds it; the message names that run.
    """
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        file = Path(url.database).expanduser()
        with _file_lock(
            file.with_name(f".{file.name}.nightpipe-lock"), f"the database {file}", "database.url"
        ):
            yield
        return
    hi, lo = _advisory_key()
    keys = {"hi": hi, "lo": lo}
    with db.engine.connect() as conn:
        conn.execute(
            text("SELECT set_config('application_name', :name, false)"), {"name": holder_text()[:63]}
        )
        conn.commit()
        if not conn.execute(text("SELECT pg_try_advisory_lock(:hi, :lo)"), keys).scalar():
            holders = conn.execute(
                text(
                    "SELECT a.application_name, a.client_addr FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() "
                    "AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid) AND l.objsubid = 2 "
                    "AND a.datname = current_database()"
                ),
                keys,
            ).all()
            names = "; ".join(str(name or "a session") for name, _addr in holders) or "another session"
            conn.rollback()
            raise RunBusyError(
                f"another nightpipe run is working on the database {safe_url(db.url)}: {names}", hint=HINT
            )
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:hi, :lo)"), keys)
            conn.commit()
