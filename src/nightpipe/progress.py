"""Progress reporting for loops over frames, decoupled from any terminal library.

Library functions that loop over frames accept a ``progress`` object following
:class:`Progress`; the CLI passes a rich progress bar, tests and the web app pass
their own, and the default :class:`NullProgress` does nothing.
"""

from __future__ import annotations

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
