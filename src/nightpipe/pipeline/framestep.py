"""One contract for every per-frame step, and the one loop that runs it.

A per-frame step says what is particular to it and nothing else:

- which frames it takes, as :class:`FrameTask` items: the frame, the **key** of its inputs and
  settings (a frame whose last run had the same key, and whose outputs still exist, is not
  done again), the picklable input of its work, and the files it writes;
- ``process(item)``: the work on one frame, pure of any database, so that it can run in a
  thread or on a Dask worker; it raises a :class:`~nightpipe.errors.NightpipeError` when the
  frame cannot be done, with the reason a user can act on (:class:`FrameFailedError` when the
  step has already logged it, with details for the failed run's row);
- ``store(session, task, result)``: the frame's rows, written in this process.

:func:`run_frame_step` does the rest the same way for every step: skipping unchanged frames,
mapping ``process`` over threads or a Dask cluster (:func:`~nightpipe.pipeline.parallel.map_frames`),
writing results in batched transactions, recording each frame's outcome (``step_runs``: status,
reason, key, duration), progress and timing. One bad frame is recorded and the others go on.

This is the design of BANZAI's ``Stage`` and prose's ``Block``, with the database writes kept
out of the workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.config import ParallelConfig
from nightpipe.errors import NightpipeError
from nightpipe.pipeline.interrupt import Interrupted
from nightpipe.pipeline.parallel import Outcome, map_frames
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.store.models import StepRun
from nightpipe.store.steps import record_step

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")
Result_contra = TypeVar("Result_contra", contravariant=True)


@dataclass(frozen=True)
class FrameTask(Generic[In]):
    """One frame's work: who it is, the key of its inputs, its input, what it writes."""

    frame_id: int
    night: str | None
    key: str
    item: In
    label: str  # the frame's input file, in reasons; its name in progress
    outputs: tuple[Path, ...] = ()


class FrameFailedError(NightpipeError):
    """A frame the step could not do, which the step has already reported in its log.

    ``details`` go into the failed run's row (the missing masters of a frame, say).
    """

    def __init__(self, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.details = details


@dataclass(frozen=True)
class StepRecord:
    """What a stored frame's step run says beyond its key and duration.

    A step whose failed frames still have rows of their own (an unsolved frame's plate
    solution, with its reason) stores them and says ``status="failed"`` here.
    """

    output_path: str | None = None
    details: dict[str, Any] | None = None
    status: str = "ok"
    reason: str | None = None


class FrameStore(Protocol[In, Result_contra]):
    """How a per-frame step's results are kept (see the module's text)."""

    name: str  # its ``step_runs.step``
    store_batch: int  # frames per transaction: a commit per frame can cost as much as the rows
    retry_failed: bool  # False: a frame that failed with the same key is not tried again

    def store(self, session: Session, task: FrameTask[In], result: Result_contra) -> StepRecord:
        """Write the frame's rows; return what its step run records."""
        ...


class FrameStep(FrameStore[In, Out], Protocol[In, Out]):
    """A per-frame step: how one frame is done, and how its result is kept."""

    def process(self, item: In) -> Out:
        """The work on one frame (no database; may run on a Dask worker)."""
        ...


@dataclass
class StepTally(Generic[In]):
    """What a run of a per-frame step did, in frame order."""

    done: list[FrameTask[In]] = field(default_factory=list)
    failures: list[tuple[FrameTask[In], str]] = field(default_factory=list)
    skipped: list[FrameTask[In]] = field(default_factory=list)
    records: dict[int, StepRecord] = field(default_factory=dict)  # of the frames stored, by frame id
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        """Frames done in this run."""
        return len(self.done)

    @property
    def failed(self) -> int:
        """Frames that failed in this run."""
        return len(self.failures)


@dataclass(frozen=True)
class _Done(Generic[Out]):
    """What a worker sends back: the result, or the reason the frame failed (as text: typed
    errors need not survive pickling), and how long it took."""

    value: Out | None
    reason: str | None
    seconds: float
    details: dict[str, Any] | None = None


class _Guarded(Generic[In, Out]):
    """``process`` of a task's item, timed, with a :class:`NightpipeError` turned into the frame's reason."""

    def __init__(self, name: str, process: Callable[[In], Out]) -> None:
        self.name = name
        self.process = process

    def __call__(self, task: FrameTask[In]) -> _Done[Out]:
        t0 = time.perf_counter()
        try:
            value = self.process(task.item)
        except FrameFailedError as exc:
            return _Done(None, str(exc), time.perf_counter() - t0, exc.details)
        except NightpipeError as exc:
            where = {"frame": Path(task.label).name, "step": self.name}
            log.warning("%s failed: %s", self.name, exc, extra=where)
            return _Done(None, str(exc), time.perf_counter() - t0)
        return _Done(value, None, time.perf_counter() - t0)


def previous_runs(db: Database, step: str, *, failed_too: bool = False) -> dict[int, tuple[str, str | None]]:
    """``{frame_id: (status, key)}`` of the last ``ok`` run of ``step`` per frame (failed too if asked)."""
    statuses = ("ok", "failed") if failed_too else ("ok",)
    query = select(StepRun.frame_id, StepRun.status, StepRun.input_hash).where(
        StepRun.step == step, StepRun.status.in_(statuses)
    )
    with db.session() as session:  # three columns, not whole rows with their details
        rows = session.execute(query).all()
    return {frame_id: (status, key) for frame_id, status, key in rows if frame_id is not None}


def split_unchanged(
    tasks: Sequence[FrameTask[In]], previous: dict[int, tuple[str, str | None]], *, force: bool = False
) -> tuple[list[FrameTask[In]], list[FrameTask[In]]]:
    """The tasks to do, and those unchanged: same key as last time, and every output still there
    (or a failure, which wrote none)."""
    todo: list[FrameTask[In]] = []
    unchanged: list[FrameTask[In]] = []
    for task in tasks:
        status, key = previous.get(task.frame_id, ("", None))
        same = key == task.key and (status == "failed" or all(p.is_file() for p in task.outputs))
        (unchanged if same and not force else todo).append(task)
    return todo, unchanged


def run_frame_step(
    step: FrameStep[In, Out],
    tasks: Sequence[FrameTask[In]],
    db: Database,
    parallel: ParallelConfig,
    *,
    force: bool = False,
    client: Any = None,
    progress: Progress | None = None,
    on_done: Callable[[FrameTask[In], Out], None] | None = None,
) -> StepTally[In]:
    """Run ``step`` on ``tasks``: skip the unchanged, process the rest in parallel, store, record.

    ``on_done(task, result)`` is called in this process with each frame's result as it arrives
    (for what the night makes of its frames: a summary, a plot, a live view).

    Results are written in this process, ``step.store_batch`` frames per transaction, as they
    arrive; a run killed before a commit records none of that batch, so its frames are done
    again next time (a run stopped by :class:`~nightpipe.pipeline.interrupt.Interrupted` stores
    the frames it finished before it goes). A frame whose ``process`` raised a
    ``NightpipeError`` (or whose worker died) is recorded as failed with the reason, and the
    others go on.
    """
    started = time.perf_counter()
    previous = previous_runs(db, step.name, failed_too=not step.retry_failed)
    todo, unchanged = split_unchanged(tasks, previous, force=force)
    writer: StepWriter[In, Out] = StepWriter(step, db)
    writer.tally.skipped = unchanged

    def finished(index: int, outcome: Outcome[_Done[Out]]) -> None:
        task = todo[index]
        done = outcome.value
        if done is not None and done.reason is None:
            value: Out = done.value  # type: ignore[assignment]
            writer.done(task, value, done.seconds)
            if on_done is not None:
                on_done(task, value)
            return
        if done is None:
            reason = f"{task.label}: unexpected error: {outcome.error!r}"
            log.error("%s: %s", step.name, reason)
            writer.failed(task, reason)
        else:
            writer.failed(task, str(done.reason), seconds=done.seconds, details=done.details)

    try:
        map_frames(
            _Guarded(step.name, step.process),
            todo,
            parallel,
            client=client,
            progress=progress,
            description=step.name,
            label=lambda task: Path(task.label).name,
            on_result=finished,
        )
    except Interrupted:  # a stop between two frames: keep those finished, a rerun does the rest
        writer.close(todo)
        raise
    tally = writer.close(todo)
    tally.seconds = time.perf_counter() - started
    return tally


class StepWriter(Generic[In, Out]):
    """Keeps a per-frame step's results: rows and runs in batched transactions, failures at once.

    :func:`run_frame_step` writes through it; so does a step that schedules its frames itself
    (the solve step: a reference frame first, the others matched to it in parallel, the
    frames that need a full solve last, in frame order). A run killed before a commit records
    none of that batch, so its frames are done again next time.
    """

    def __init__(self, step: FrameStore[In, Out], db: Database) -> None:
        self.step = step
        self.db = db
        self.tally: StepTally[In] = StepTally()
        self._pending: list[tuple[FrameTask[In], Out, float | None]] = []

    def done(self, task: FrameTask[In], result: Out, seconds: float | None) -> None:
        """A frame's result, stored with the next batch."""
        self._pending.append((task, result, seconds))
        if len(self._pending) >= self.step.store_batch:
            self.flush()

    def failed(
        self,
        task: FrameTask[In],
        reason: str,
        *,
        seconds: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """A frame that could not be done: its failed run, with the reason, now."""
        self.tally.failures.append((task, reason))
        with self.db.session() as session:
            record_step(
                session,
                step=self.step.name,
                status="failed",
                frame_id=task.frame_id,
                night=task.night,
                reason=reason,
                input_hash=None if self.step.retry_failed else task.key,
                details=details,
                seconds=seconds,
            )

    def flush(self) -> None:
        """Write the pending frames' rows and runs in one transaction."""
        if not self._pending:
            return
        stored: list[tuple[FrameTask[In], StepRecord]] = []
        with self.db.session() as session:
            for task, result, seconds in self._pending:
                record = self.step.store(session, task, result)
                stored.append((task, record))
                record_step(
                    session,
                    step=self.step.name,
                    status=record.status,
                    frame_id=task.frame_id,
                    night=task.night,
                    reason=record.reason,
                    input_hash=task.key,
                    output_path=record.output_path,
                    details=record.details,
                    seconds=seconds,
                )
        self._pending.clear()
        for task, record in stored:  # only once committed
            self.tally.records[task.frame_id] = record
            if record.status == "ok":
                self.tally.done.append(task)
            else:
                self.tally.failures.append((task, record.reason or "failed"))

    def close(self, order: Sequence[FrameTask[In]]) -> StepTally[In]:
        """Write what is pending; the tally, its frames in the order of ``order``."""
        self.flush()
        rank = {id(task): i for i, task in enumerate(order)}  # frame order, whatever finished first
        self.tally.done.sort(key=lambda task: rank.get(id(task), len(rank)))
        self.tally.failures.sort(key=lambda failure: rank.get(id(failure[0]), len(rank)))
        return self.tally
