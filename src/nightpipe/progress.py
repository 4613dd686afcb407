"""Progress reporting for loops over frames, decoupled from any terminal library.

Library functions that loop over frames accept a ``progress`` object following
:class:`Progress`; the CLI passes a rich progress bar on a terminal and a
:class:`LineProgress` (plain log lines) otherwise, tests and the web app pass their own,
and the default :class:`NullProgress` does nothing.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol


class Progress(Protocol):
    """What a long loop reports: a start with its size, then one advance per item."""

    def start(self, total: int, description: str) -> None:
        """A loop of ``total`` items begins."""

    def advance(self, item: str | None = None) -> None:
        """One item is done; ``item`` names it (a file name, say)."""

    def stop(self) -> None:
        """The loop is over."""


class NullProgress:
    """A progress sink that ignores everything."""

    def start(self, total: int, description: str) -> None:
        """Ignore the start."""

    def advance(self, item: str | None = None) -> None:
        """Ignore the advance."""

    def stop(self) -> None:
        """Ignore the stop."""


class CountingProgress:
    """Counts advances; handy in tests."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.items: list[str | None] = []

    def start(self, total: int, description: str) -> None:
        """Remember the announced total."""
        self.total += total

    def advance(self, item: str | None = None) -> None:
        """Count one item."""
        self.done += 1
        self.items.append(item)

    def stop(self) -> None:
        """Nothing to do."""


class LineProgress:
    """Progress as plain log lines, for output that is not a terminal (a log file, cron mail):
    one line when a loop starts, one every ``fraction`` of it (at most every ``most`` items),
    one when it ends; no bar, no control characters."""

    def __init__(
        self, logger: logging.Logger | None = None, *, fraction: float = 0.1, most: int = 25
    ) -> None:
        self.log = logger or logging.getLogger("nightpipe.progress")
        self.fraction, self.most = fraction, most
        self._description, self._total, self._done, self._every = "", 0, 0, 1
        self._started: float | None = None

    def start(self, total: int, description: str) -> None:
        """Say how many items the loop has."""
        self._description, self._total, self._done = description, total, 0
        self._every = max(1, min(self.most, math.ceil(total * self.fraction)))
        self._started = time.perf_counter() if total else None  # an empty loop says nothing
        if total:
            self.log.info("%s: %d to do", description, total)

    def advance(self, item: str | None = None) -> None:
        """Every ``_every`` items, say how far the loop is."""
        self._done += 1
        if self._done % self._every == 0 and self._done < self._total:
            where = f" ({item})" if item else ""
            self.log.info("%s: %d of %d done%s", self._description, self._done, self._total, where)

    def stop(self) -> None:
        """Say that the loop is over (once)."""
        if self._started is not None:
            seconds = time.perf_counter() - self._started
            self.log.info("%s: %d of %d done in %.1f s", self._description, self._done, self._total, seconds)
            self._started = None
