"""A lock file that keeps two runs off the same night."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nightpipe.errors import PipelineError


@contextmanager
def night_lock(folder: Path, name: str = "night") -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock on ``folder/.nightpipe-<name>.lock``.

    The lock is released when the process ends, even after ``kill -9``, because it is an
    ``flock`` on an open file, not the file's existence.

    Raises
    ------
    PipelineError
        When another process holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".nightpipe-{name}.lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PipelineError(
                f"another nightpipe run ({holder}) is working on this night",
                path=path,
                hint="wait for it to finish; the lock goes away with the process",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield path
    finally:
        handle.close()
