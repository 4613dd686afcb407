"""Shared CLI plumbing: the context state, settings loading, output and progress.

Nothing here imports more than typer at start-up: rich and the settings (pydantic) come on
first use, so that ``nightpipe --help`` starts fast (issue 22).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from nightpipe.progress import LineProgress, NullProgress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID
    from rich.table import Table
    from rich.text import Text

    from nightpipe.config import Settings
    from nightpipe.progress import Progress

LOG_WIDTH = 160  # columns of what is written to a file or a pipe (a terminal has its own width)


@dataclass
class CliState:
    """What the global options decided, shared by every subcommand."""

    config_path: Path | None = None
    overrides: list[str] = field(default_factory=list)
    quiet: bool = False
    verbose: bool = False
    debug: bool = False
    output: Path | None = None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The effective settings, loaded and validated once (``--output`` applied first, so that
        a ``--set`` of the same key wins)."""
        if self._settings is None:
            from nightpipe.config import load_settings

            settings = load_settings(self.config_path, overrides=self.overrides)
            if self.output is not None:
                moved = output_overrides(self.output, sqlite=settings.database.url.startswith("sqlite"))
                settings = load_settings(self.config_path, overrides=[*moved, *self.overrides])
            self._settings = settings
        return self._settings


def output_overrides(folder: Path, *, sqlite: bool = True) -> list[str]:
    """The ``--set`` items of ``--output DIR``: the products, the masters library and (when the
    database is SQLite) the database under ``DIR``, so that one flag isolates a run.

    >>> for item in output_overrides(Path("/tmp/n2")):
    ...     print(item)
    paths.output="/tmp/n2"
    paths.masters="/tmp/n2/masters"
    database.url="sqlite:////tmp/n2/nightpipe.sqlite"
    """
    import json

    folder = folder.expanduser()
    items = [f"paths.output={json.dumps(str(folder))}"]
    items.append(f"paths.masters={json.dumps(str(folder / 'masters'))}")
    if sqlite:
        items.append(f"database.url={json.dumps('sqlite:///' + str(folder / 'nightpipe.sqlite'))}")
    return items


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of the running command."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def console(err: bool = False) -> Console:
    """A rich console on stdout (results) or stderr (messages, progress).

    It reads no markup: what is printed (a file name, a reason, a hint such as "add a
    ``[[timeseries.targets]]`` block") comes out as it is; styles go through :func:`labelled`.
    Written to a file or a pipe, it is :data:`LOG_WIDTH` wide (``COLUMNS`` says otherwise).
    """
    from rich.console import Console

    out = Console(stderr=err, markup=False, highlight=False, soft_wrap=True)
    if not out.is_terminal and out.width == 80:  # rich's guess when there is no terminal
        out.width = LOG_WIDTH
    return out


def labelled(label: str, style: str, text: str) -> Text:
    """``label`` in ``style``, a space, then ``text`` exactly as it is."""
    from rich.text import Text

    return Text.assemble((label, style), " ", text)


def new_table(title: str, **options: Any) -> Table:
    """A table with heavy lines on a terminal, plain ASCII in a file or a pipe (logs, cron mail)."""
    from rich import box
    from rich.table import Table

    lines = box.HEAVY_HEAD if console().is_terminal else box.ASCII
    return Table(title=title, box=lines, **options)


class RichProgress:
    """A rich progress bar implementing :class:`nightpipe.progress.Progress` on stderr."""

    def __init__(self, *, disable: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBar

        self._progress = RichBar(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[item]}", style="dim", markup=False),
            console=console(err=True),
            disable=disable,
            transient=False,
        )
        self._task: TaskID | None = None

    def start(self, total: int, description: str) -> None:
        """Open a bar for ``total`` items."""
        if self._task is None:
            self._progress.start()
        else:
            self._progress.stop_task(self._task)
        self._task = self._progress.add_task(description, total=total, item="")

    def advance(self, item: str | None = None) -> None:
        """Advance the bar by one item."""
        if self._task is not None:
            self._progress.update(self._task, advance=1, item=(item or "")[-40:])

    def stop(self) -> None:
        """Close the bar."""
        if self._task is not None:
            self._progress.stop_task(self._task)  # its clock stops with it
            self._progress.stop()
            self._task = None


def progress_for(ctx: typer.Context) -> Progress:
    """Progress on stderr: a live bar on a terminal; plain log lines (a loop's start, every
    10 %, its end) in a file or a pipe; nothing under ``--quiet``."""
    if state(ctx).quiet:
        return NullProgress()
    if not console(err=True).is_terminal:
        return LineProgress()
    return RichProgress()
