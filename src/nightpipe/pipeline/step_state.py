"""What a night-level step last did for real: a rerun that finds everything unchanged keeps the
figures of the run that did the work (its summary, when, by which version), so that the report
describes the night's state rather than the last invocation's counters (issue 24)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe import __version__
from nightpipe.store.models import StepRun

WORK_KEYS = ("ok", "added", "updated", "solved", "processed", "failed", "measured")
KEPT_KEYS = ("unchanged", "skipped", "unchanged_nights")


def did_work(summary: dict[str, Any]) -> bool:
    """False when the step only found its products unchanged (or skipped every frame).

    >>> did_work({"ok": 0, "unchanged": 142, "failed": 0})
    False
    >>> did_work({"ok": 3, "unchanged": 139})
    True
    >>> did_work({"html": "reports/x.html"})
    True
    """

    def count(key: str) -> int:
        value = summary.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    if any(count(k) for k in WORK_KEYS):
        return True
    return not any(count(k) for k in KEPT_KEYS)


def carried_state(
    session: Session, night: str | None, step: str, summary: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The ``state`` to record with this run of ``step``: this run's own when it did work, else
    the one the previous row carried (or this run's, when there is none)."""
    if not did_work(summary):
        previous = session.scalars(
            select(StepRun.details).where(
                StepRun.step == step, StepRun.frame_id.is_(None), StepRun.night == night
            )
        ).first()
        if isinstance(previous, dict) and isinstance(previous.get("state"), dict):
            return dict(previous["state"])
    return {
        "summary": summary,
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "wall_s": round(seconds, 2),
    }
