"""The state of a night, as the report and the end-of-run table show it: per step what was done,
when, by which version, with its real figures in human units (rounded, with their errors, no
``None``, paths relative to the output folder), and what this run did, in one short line.

A rerun that finds everything unchanged keeps the figures of the run that did the work
(``state`` in the ``night:<step>`` row, see :mod:`nightpipe.pipeline.step_state`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sqlalchemy import select

from nightpipe.pipeline.step_state import did_work
from nightpipe.store.db import Database
from nightpipe.store.models import StepRun

HIDDEN = frozenset({"seconds", "services", "folder", "frames_list"})
ERROR_SUFFIXES = ("_err", "_std")


def human_value(value: Any, output: Path | None = None) -> str | None:
    """A value as a person reads it: floats rounded, paths relative, ``None`` as nothing.

    >>> human_value(16.537716206585635), human_value(0.00459637), human_value(3853), human_value(None)
    ('16.54', '0.0046', '3853', None)
    >>> human_value("/tmp/out/reports/a.html", Path("/tmp/out"))
    'reports/a.html'
    """
    if value is None or value in ("", {}, []):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value == 0:
            return "0"
        magnitude = abs(value)
        return f"{value:.1f}" if magnitude >= 100 else f"{value:.2f}" if magnitude >= 1 else f"{value:.2g}"
    if isinstance(value, dict):
        inner = [
            f"{k} {human_value(v, output)}" for k, v in value.items() if human_value(v, output) is not None
        ]
        return ", ".join(inner) or None
    if isinstance(value, list | tuple):
        return (
            ", ".join(str(human_value(v, output)) for v in value if human_value(v, output) is not None)
            or None
        )
    text = str(value)
    if output is not None and text.startswith("/"):
        try:
            return str(Path(text).relative_to(output))
        except ValueError:
            return text
    return text


def human_summary(summary: dict[str, Any], output: Path | None = None) -> str:
    """``key value`` pairs joined by commas, a value and its error as ``value ± error``.

    >>> human_summary({"zero_point_median": 16.5377, "zero_point_std": 0.0412, "plot": None, "ok": 142})
    'zero point median 16.54 ± 0.041, ok 142'
    """
    parts = []
    for key, value in summary.items():
        if key in HIDDEN or key.endswith(ERROR_SUFFIXES):
            continue
        text = human_value(value, output)
        if text is None:
            continue
        base = key.removesuffix("_median")
        err = next(
            (summary[k] for k in (f"{key}_err", f"{base}_std", f"{key}_std") if summary.get(k) is not None),
            None,
        )
        err_text = human_value(err, output) if err is not None else None
        parts.append(f"{key.replace('_', ' ')} {text}" + (f" ± {err_text}" if err_text else ""))
    return ", ".join(parts)


def night_step_rows(db: Database, night: str | None) -> list[StepRun]:
    """The night's ``night:<step>`` rows, in the order they ran (one per step)."""
    with db.session() as session:
        rows = list(
            session.scalars(
                select(StepRun)
                .where(StepRun.frame_id.is_(None), StepRun.night == night, StepRun.step.startswith("night:"))
                .order_by(StepRun.id)
            )
        )
        session.expunge_all()
    return rows


def state_rows(db: Database, night: str | None, output: Path) -> list[dict[str, Any]]:
    """One row per step: status, when it was done, by which version, how long it took, its figures."""
    out = []
    for run in night_step_rows(db, night):
        details = run.details or {}
        state = details.get("state") or {"summary": details.get("summary") or {}}
        out.append(
            {
                "step": run.step.removeprefix("night:"),
                "status": run.status,
                "done": state.get("at")
                or (run.finished_at.strftime("%Y-%m-%d %H:%M UTC") if run.finished_at else ""),
                "version": state.get("version") or "",
                "took s": human_value(state.get("wall_s")) or "",
                "frames": details.get("tally") or "",
                "figures": human_summary(state.get("summary") or {}, output),
                "error": run.reason or "",
            }
        )
    return out


def this_run_line(db: Database, night: str | None) -> str:
    """What the last invocation did, in one line ("kept" for a step whose products were unchanged)."""
    done: list[str] = []
    kept: list[str] = []
    for run in night_step_rows(db, night):
        name = run.step.removeprefix("night:")
        (done if did_work((run.details or {}).get("summary") or {}) else kept).append(name)
    if not done and not kept:
        return "no step has run on this night yet"
    text = "this run: " + (", ".join(done) + " done" if done else "nothing redone")
    return text + (f"; {', '.join(kept)} unchanged and kept" if kept else "")
