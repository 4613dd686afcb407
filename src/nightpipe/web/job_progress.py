"""A job's live progress and log: what the engine reports, written as job events and a log file."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from nightpipe.logs import ContextFilter
from nightpipe.store.db import Database
from nightpipe.web.jobqueue import add_event


class JobProgress:
    """The engine's :class:`~nightpipe.progress.Progress` for a job: one event when a loop
    starts (the step), one per frame at most every ``every_s`` seconds, and the last one."""

    def __init__(self, db: Database, job_id: int, *, every_s: float = 0.5) -> None:
        self.db, self.job_id, self.every_s = db, job_id, every_s
        self.description, self.total, self.done = "", 0, 0
        self._last = 0.0

    def _event(self, kind: str, message: str) -> None:
        with self.db.session() as session:
            add_event(session, self.job_id, kind, message, self.done, self.total)
        self._last = time.monotonic()

    def start(self, total: int, description: str) -> None:
        self.description, self.total, self.done = description, total, 0
        self._event("step", f"{description}: {total} to do")

    def advance(self, item: str | None = None) -> None:
        self.done += 1
        if self.done == self.total or time.monotonic() - self._last >= self.every_s:
            self._event(
                "progress",
                f"{self.description}: {self.done} of {self.total}" + (f" ({item})" if item else ""),
            )

    def stop(self) -> None:
        """Nothing more to say: the last advance said it."""


_job_of_thread: dict[int, int] = {}  # the thread running each job of this process
_threads_lock = threading.Lock()


class JobLogHandler(logging.Handler):
    """Every record of the job into its log file; warnings and errors also as job events.

    The handler sits on the "nightpipe" logger, which every job of the process shares: a record
    is the job's when the thread that created the handler (the one running the job) logged it.
    A record of another thread (the engine's thread pools) is the job's only when no other job
    runs in this process (a worker runs one job at a time: always, there); else it is dropped
    rather than written into another user's log.
    """

    def __init__(self, db: Database, job_id: int, path: Path) -> None:
        super().__init__(logging.INFO)
        self.db, self.job_id = db, job_id
        self.thread = threading.get_ident()
        with _threads_lock:
            _job_of_thread[self.thread] = job_id
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = logging.FileHandler(path, encoding="utf-8")
        self.file.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s [%(step)s] %(frame)s%(message)s")
        )
        self.addFilter(ContextFilter())

    def attach(self, logger: logging.Logger) -> None:
        """Add this handler to ``logger`` by replacing its list of handlers, never changing it in place."""
        with _threads_lock:
            logger.handlers = [*logger.handlers, self]

    def detach(self, logger: logging.Logger) -> None:
        """Take this handler off ``logger``, again by replacing the list.

        ``Logger.removeHandler`` shifts the list that another thread's record may be walking through
        (``Logger.callHandlers`` iterates ``logger.handlers`` without a lock), so a job ending at that
        moment made the other job's handler miss the record: a line lost from the other user's log.
        A walk already started keeps the old list and sees every handler it held."""
        with _threads_lock:
            logger.handlers = [h for h in logger.handlers if h is not self]

    def owns(self, record: logging.LogRecord) -> bool:
        with _threads_lock:
            owner = _job_of_thread.get(record.thread or 0)
            if owner is not None:
                return owner == self.job_id
            return set(_job_of_thread.values()) == {self.job_id}

    def emit(self, record: logging.LogRecord) -> None:
        if not self.owns(record):
            return
        self.file.emit(record)
        if record.levelno >= logging.WARNING:
            try:
                with self.db.session() as session:
                    add_event(
                        session, self.job_id, "log", f"{record.levelname.lower()}: {record.getMessage()}"
                    )
            except Exception:  # the log must never break the job
                self.handleError(record)

    def close(self) -> None:
        with _threads_lock:
            if _job_of_thread.get(self.thread) == self.job_id:
                del _job_of_thread[self.thread]
        self.file.close()
        super().close()
