"""The step contract and the runner that chains steps over a night.

A :class:`Step` names what it reads and what it provides and wraps one library function.
The runner times each step (wall and CPU), adds the step's name to any error, records a
night-level row in ``step_runs``, and goes on with the next step when one fails: per-frame
failures are the steps' own business (each records them and carries on).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.exit_codes import ExitCode
from nightpipe.pipeline.interrupt import Interrupted, StopRequest
from nightpipe.pipeline.step_state import carried_state
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.steps import record_step
from nightpipe.store.values import jsonable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NightContext:
    """What every step of a night gets: settings, database, the raw folder, the night."""

    settings: Settings
    db: Database
    raw_dirs: tuple[Path, ...]
    night: str | None = None
    progress: Progress = field(default_factory=NullProgress)
    client: Any = None  # a distributed.Client, or None for in-process threads
    stop: StopRequest | None = None  # checked before each step (and between frames, by the progress)


@dataclass(frozen=True)
class Tally:
    """What a step had to do (``total`` frames, or masters, targets: ``unit``) and how much of it
    failed; ``failures`` name them, ``(frame, reason)``, when the step knows."""

    total: int
    failed: int = 0
    unit: str = "frames"
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> str:
        """``ok`` (none failed), ``partial`` (some did) or ``failed`` (all did)."""
        if not self.failed:
            return "ok"
        return "failed" if self.failed >= self.total else "partial"

    def describe(self) -> str:
        """``8 frames``, ``3 of 24 frames failed``."""
        if not self.failed:
            return f"{self.total} {self.unit}"
        return f"{self.failed} of {self.total} {self.unit} failed"


@dataclass(frozen=True)
class Step:
    """One step of the night: a name, what it needs and provides, and the function to run.

    ``tally(context, value)`` counts what the step did from its return value (and the
    database): its status is ``ok``, ``partial`` or ``failed`` by that count. Without it the
    count comes from the ``failed`` and ``frames`` (or ``ok``, ``processed``) of the summary.
    """

    name: str
    description: str
    reads: tuple[str, ...]
    provides: tuple[str, ...]
    run: Callable[[NightContext], Any]
    tally: Callable[[NightContext, Any], Tally | None] | None = None


@dataclass(frozen=True)
class StepResult:
    """How one step went: ``ok``, ``partial`` (some frames failed) or ``failed`` (all of them
    failed, or the step could not run: ``error``)."""

    name: str
    status: str
    wall_s: float
    cpu_s: float
    summary: Mapping[str, Any]
    tally: Tally | None = None
    error: str | None = None

    @property
    def failed_frames(self) -> int:
        """Frames (or whatever the step counts) that failed."""
        return self.tally.failed if self.tally is not None else 0


@dataclass(frozen=True)
class RunSummary:
    """How the whole run went."""

    steps: tuple[StepResult, ...]

    @property
    def failed_frames(self) -> int:
        """Frames that failed at some step."""
        return sum(s.failed_frames for s in self.steps)

    @property
    def failed_steps(self) -> tuple[str, ...]:
        """Steps that could not run at all, or whose every frame failed."""
        return tuple(s.name for s in self.steps if s.status == "failed")

    @property
    def wall_s(self) -> float:
        """Total wall time."""
        return sum(s.wall_s for s in self.steps)

    @property
    def exit_code(self) -> int:
        """0 when every step is ``ok``, else 1 (:mod:`nightpipe.exit_codes`)."""
        return ExitCode.OK if all(s.status == "ok" for s in self.steps) else ExitCode.FAILED


def summary_dict(value: Any) -> dict[str, Any]:
    """A step's return value as a plain dict (dataclasses and mappings are unpacked)."""
    if value is None:
        return {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: v for k, v in dataclasses.asdict(value).items() if _is_plain(v)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if _is_plain(v)}
    return {"result": str(value)}


def _is_plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _first_int(summary: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = summary.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def summary_tally(summary: Mapping[str, Any]) -> Tally | None:
    """The count of a plain summary: ``failed`` (or ``n_failed``, ``bad``) of ``frames`` (or of
    ``ok``/``processed`` + failed); ``None`` when it counts nothing."""
    failed = _first_int(summary, ("failed", "n_failed", "bad"))
    total = _first_int(summary, ("frames", "total"))
    if total is None:
        done = _first_int(summary, ("ok", "processed", "solved"))
        total = None if done is None and failed is None else (done or 0) + (failed or 0)
    if total is None:
        return None
    return Tally(max(total, failed or 0), failed or 0)


def _check_stop(context: NightContext, step: Step) -> None:
    """Raise :class:`Interrupted` before ``step`` when a stop was asked for."""
    if context.stop is None:
        return
    try:
        context.stop.check()
    except Interrupted as stop:
        stop.step, stop.before_step = step.name, True
        raise


def _record_interrupted(context: NightContext, step: Step, stop: Interrupted, seconds: float) -> None:
    with context.db.session() as session:
        record_step(
            session,
            step=f"night:{step.name}",
            status="interrupted",
            night=context.night,
            reason=stop.message(),
            seconds=seconds,
        )


def fault_text(exc: BaseException) -> str | None:
    """A plain sentence for a fault of the machine rather than a bug (a full disk, a read-only
    folder, a database locked too long), naming the file; ``None`` for anything else."""
    from nightpipe.errors import write_problem
    from nightpipe.store.db import BUSY_S, is_locked

    if isinstance(exc, OSError) and (problem := write_problem(exc)) is not None:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{problem[0]} ({problem[1]})"
    if is_locked(exc):
        return (
            f"the database stayed locked by another program for {BUSY_S} s "
            "(find what holds it, an open SQLite shell or a long query, and rerun)"
        )
    return None


def run_steps(steps: Sequence[Step], context: NightContext) -> RunSummary:
    """Run ``steps`` in order on ``context``; a failing step is recorded and the run goes on.

    A stop asked for (``context.stop``) ends the run with :class:`Interrupted` before the next
    step, or between two frames of the step in hand (its ``night:<step>`` row says
    ``interrupted``).
    """
    results: list[StepResult] = []
    for step in steps:
        _check_stop(context, step)
        log.info("starting", extra={"step": step.name})
        wall0, cpu0 = time.perf_counter(), time.process_time()
        error, summary, tally = None, {}, None
        try:
            value = step.run(context)
            summary = summary_dict(value)
            tally = step.tally(context, value) if step.tally is not None else summary_tally(summary)
        except Interrupted as stop:
            stop.step = stop.step or step.name
            _record_interrupted(context, step, stop, time.perf_counter() - wall0)
            raise
        except NightpipeError as exc:
            error = f"{step.name}: {exc}"
            log.error("%s", error, extra={"step": step.name})
        except Exception as exc:  # a bug in a step must not stop an unattended night
            error = fault_text(exc)
            if error is None:
                error = f"{step.name}: internal error {exc.__class__.__name__}: {exc}"
                log.exception("%s", error, extra={"step": step.name})
            else:
                error = f"{step.name}: {error}"
                log.error("%s", error, extra={"step": step.name})
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        status = "failed" if error is not None else tally.status if tally is not None else "ok"
        result = StepResult(step.name, status, wall, cpu, summary, tally, error)
        results.append(result)
        with context.db.session() as session:
            state = carried_state(session, context.night, f"night:{step.name}", jsonable(summary), wall)
            record_step(
                session,
                step=f"night:{step.name}",
                status=status,
                night=context.night,
                reason=error,
                details={
                    "summary": summary,
                    "cpu_s": cpu,
                    "tally": None if tally is None else tally.describe(),
                    "state": state,
                },
                seconds=wall,
            )
        if tally is not None and tally.failed:
            log.warning("%s", tally.describe(), extra={"step": step.name})
        log.info("done in %.1f s", wall, extra={"step": step.name})
    return RunSummary(tuple(results))
