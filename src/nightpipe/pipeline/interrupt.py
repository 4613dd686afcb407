"""Stopping a run cleanly on SIGINT or SIGTERM: between two frames, keeping what is done.

:func:`stop_on_signals` turns the first SIGINT or SIGTERM into a :class:`StopRequest`; the run
checks it where nothing is half done: after each frame (the :class:`StoppingProgress` wrapped
around the progress every frame loop reports to) and before each step. There it raises
:class:`Interrupted`, which goes up through every step (it is not an ``Exception``: the
handlers that record a frame's or a step's failure let it pass), while the frames finished so
far are stored. Frames in hand on other threads or workers are finished or dropped; their
products are written atomically, so nothing half written stays. A rerun goes on from there.
A second signal stops at once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from nightpipe.progress import Progress

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A run stopped by a signal, at ``step`` after ``done`` of ``total`` frames of its loop.

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` does not catch it.
    """

    def __init__(self, signum: int, *, done: int | None = None, total: int | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.step: str | None = None
        self.before_step = False
        self.done = done
        self.total = total

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    def message(self) -> str:
        """``aborted at STEP, N of M frames done, rerun to resume``."""
        step = self.step or "start-up"
        if self.before_step:
            return f"aborted before {step} (the steps before it are done), rerun to resume"
        if self.done is None or self.total is None:
            return f"aborted at {step}, rerun to resume"
        return f"aborted at {step}, {self.done} of {self.total} frames done, rerun to resume"


class StopRequest:
    """Whether a stop was asked for (and by which signal); checked between frames and steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def ask(self, signum: int) -> None:
        """Ask the run to stop at the next check."""
        self.signum = signum

    def check(self, *, done: int | None = None, total: int | None = None) -> None:
        """Raise :class:`Interrupted` when a stop was asked for."""
        if self.signum is not None:
            raise Interrupted(self.signum, done=done, total=total)


@contextmanager
def stop_on_signals(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Within the block the first of ``signals`` asks the run to stop at the next frame; a second
    one stops at once. The previous handlers come back after the block."""
    request = StopRequest()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if request.signum is not None:
            raise Interrupted(signum)
        request.ask(signum)
        log.warning(
            "%s: stopping after the frame in hand (send it again to stop now)", signal.Signals(signum).name
        )

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class StoppingProgress:
    """The progress of a run that can be stopped: reports go on to ``inner``, and once a stop
    was asked for, the next frame boundary (a loop's start, an item done) raises
    :class:`Interrupted` with how far the loop got; ``inner`` is stopped first."""

    def __init__(self, inner: Progress, request: StopRequest) -> None:
        self.inner = inner
        self.request = request
        self.total = 0
        self.done = 0
        self._open = False

    def start(self, total: int, description: str) -> None:
        """A loop begins; stop here rather than start it, when asked to."""
        self.total, self.done = total, 0
        self.request.check(done=0, total=total)
        self.inner.start(total, description)
        self._open = True

    def advance(self, item: str | None = None) -> None:
        """One item is done; stop after it when asked to."""
        self.done += 1
        self.inner.advance(item)
        if self.request.signum is not None:
            self.stop()
            self.request.check(done=self.done, total=self.total)

    def stop(self) -> None:
        """The loop is over (once, however many times the loop and the stop say so)."""
        if self._open:
            self._open = False
            self.inner.stop()
