"""Stopping between two frames (nightpipe.pipeline.interrupt): what is finished is kept, what is
not started is not done, on the real per-frame loop and a real SQLite database."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from nightpipe.config import ParallelConfig, load_settings
from nightpipe.pipeline.framestep import run_frame_step
from nightpipe.pipeline.interrupt import Interrupted, StoppingProgress, StopRequest, stop_on_signals
from nightpipe.pipeline.runner import NightContext, Step, run_steps
from nightpipe.progress import CountingProgress
from test_framestep import Doubler, Job, _night, _runs


class SlowDoubler(Doubler):
    """A twentieth of a second a frame: a stop finds frames not started yet."""

    def process(self, job: Job) -> int:
        time.sleep(0.05)
        return super().process(job)


class StopAfter(CountingProgress):
    """Counts items, and asks ``request`` to stop (as a signal handler would) after ``n``."""

    def __init__(self, request: StopRequest, n: int) -> None:
        super().__init__()
        self.request, self.n = request, n

    def advance(self, item: str | None = None) -> None:
        super().advance(item)
        if self.done == self.n:
            self.request.ask(signal.SIGTERM)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_stop_keeps_the_frames_finished_and_starts_no_other(tmp_path: Path, threads: int) -> None:
    db, tasks = _night(tmp_path, [str(i) for i in range(1, 11)])
    request = StopRequest()
    progress = StoppingProgress(StopAfter(request, 3), request)
    with pytest.raises(Interrupted) as stopped:
        run_frame_step(SlowDoubler(), tasks, db, ParallelConfig(threads=threads), progress=progress)
    assert (stopped.value.done, stopped.value.total, stopped.value.exit_code) == (3, 10, 143)
    runs = _runs(db)  # a batch of two frames per transaction: the third was pending, and is kept
    assert sorted(runs) == [1, 2, 3] and all(r.status == "ok" for r in runs.values())
    written = sorted(int(p.stem[1:]) for p in tmp_path.glob("f*.out"))
    assert written[:3] == [0, 1, 2] and len(written) <= 3 + 2 * threads  # and the frames in hand


def test_a_stop_before_a_step_names_it(tmp_path: Path) -> None:
    settings = load_settings(None, overrides=[f"database.url='sqlite:///{tmp_path}/db.sqlite'"], environ={})
    db, _ = _night(tmp_path, [])
    request = StopRequest()
    ran: list[str] = []

    def first(ctx: NightContext) -> None:
        ran.append("first")
        request.ask(signal.SIGINT)

    steps = [Step("first", "", (), (), first), Step("second", "", (), (), lambda ctx: ran.append("second"))]
    context = NightContext(settings=settings, db=db, raw_dirs=(), night="2020-01-01", stop=request)
    with pytest.raises(Interrupted) as stopped:
        run_steps(steps, context)
    assert ran == ["first"] and stopped.value.exit_code == 130
    assert stopped.value.message() == "aborted before second (the steps before it are done), rerun to resume"


def test_the_first_signal_asks_the_second_stops_and_the_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as request:
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.signum == signal.SIGTERM  # asked, not stopped: the frame in hand goes on
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)  # a point where the handler runs
    assert signal.getsignal(signal.SIGTERM) is before
