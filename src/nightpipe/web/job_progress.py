"""A job's live progress and log: what the engine reports, written as job events and a log file."""

from __future__ import annotations

import logging
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


class JobLogHandler(logging.Handler):
    """Every record of the job into its log file; warnings and errors also as job events."""

    def __init__(self, db: Database, job_id: int, path: Path) -> None:
        super().__init__(logging.INFO)
        self.db, self.job_id = db, job_id
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = logging.FileHandler(path, encoding="utf-8")
        self.file.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s [%(step)s] %(frame)s%(message)s")
        )
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
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
        self.file.close()
        super().close()
