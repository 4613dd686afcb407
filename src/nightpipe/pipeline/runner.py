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
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.steps import record_step

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


@dataclass(frozen=True)
class Step:
    """One step of the night: a name, what it needs and provides, and the function to run."""

    name: str
    description: str
    reads: tuple[str, ...]
    provides: tuple[str, ...]
    run: Callable[[NightContext], Any]


@dataclass(frozen=True)
class StepResult:
    """How one step went."""

    name: str
    status: str  # ok, failed
    wall_s: float
    cpu_s: float
    summary: Mapping[str, Any]
    failed_frames: int = 0
    error: str | None = None


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
        """Steps that could not run at all."""
        return tuple(s.name for s in self.steps if s.status != "ok")

    @property
    def wall_s(self) -> float:
        """Total wall time."""
        return sum(s.wall_s for s in self.steps)

    @property
    def exit_code(self) -> int:
        """0 when everything worked, 1 when some frames or a step failed (:mod:`nightpipe.exit_codes`)."""
        return ExitCode.FAILED if self.failed_steps or self.failed_frames else ExitCode.OK


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


def _failed_count(summary: Mapping[str, Any]) -> int:
    for key in ("failed", "n_failed", "bad"):
        value = summary.get(key)
        if isinstance(value, int):
            return value
    return 0


def run_steps(steps: Sequence[Step], context: NightContext) -> RunSummary:
    """Run ``steps`` in order on ``context``; a failing step is recorded and the run goes on."""
    results: list[StepResult] = []
    for step in steps:
        log.info("starting", extra={"step": step.name})
        wall0, cpu0 = time.perf_counter(), time.process_time()
        status, error, summary = "ok", None, {}
        try:
            summary = summary_dict(step.run(context))
        except NightpipeError as exc:
            status, error = "failed", f"{step.name}: {exc}"
            log.error("%s", error, extra={"step": step.name})
        except Exception as exc:  # a bug in a step must not stop an unattended night
            status, error = "failed", f"{step.name}: internal error {exc.__class__.__name__}: {exc}"
            log.exception("%s", error, extra={"step": step.name})
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        result = StepResult(step.name, status, wall, cpu, summary, _failed_count(summary), error)
        results.append(result)
        with context.db.session() as session:
            record_step(
                session,
                step=f"night:{step.name}",
                status=status,
                night=context.night,
                reason=error,
                details={"summary": summary, "cpu_s": cpu},
                seconds=wall,
            )
        log.info("done in %.1f s", wall, extra={"step": step.name})
    return RunSummary(tuple(results))
