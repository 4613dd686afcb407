"""How each step of the night counts what it did: ``ok``, ``partial`` or ``failed`` follow from it.

A per-frame step is counted in the database, as the night report shows it: the frames of the
night with a run of the step, and those whose run failed, with the reason. A frame that failed
in an earlier run and was not tried again (the same input gives the same failure) still
counts, so a rerun does not call a night ``ok`` that is not. The scan counts the files under
the raw folders (an unreadable one fails); masters and light curves count what their summary
says (masters built or kept, targets fitted).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select

from nightpipe.pipeline.runner import NightContext, Tally
from nightpipe.store.models import Frame, StepRun


def under_folders(folders: Sequence[Path]) -> ColumnElement[bool]:
    """``Frame.path`` lies under one of ``folders`` (paths as the scan stores them: absolute)."""
    prefixes = [os.path.join(os.path.abspath(os.fspath(f)), "") for f in folders]
    return or_(*(Frame.path.startswith(p, autoescape=True) for p in prefixes)) if prefixes else false()


def frame_tally(ctx: NightContext, step: str) -> Tally:
    """The night's frames with a run of ``step``; the failed ones with their reasons."""
    night = Frame.night == ctx.night
    of_step = (StepRun.step == step) & StepRun.status.in_(("ok", "failed"))
    with ctx.db.session() as session:
        total = session.scalar(
            select(func.count())
            .select_from(StepRun)
            .join(Frame, StepRun.frame_id == Frame.id)
            .where(of_step, night)
        )
        failed = session.execute(
            select(Frame.path, StepRun.reason)
            .join(Frame, StepRun.frame_id == Frame.id)
            .where(of_step, night, StepRun.status == "failed")
            .order_by(Frame.mid_utc, Frame.path)
        ).all()
    failures = tuple((Path(path).name, reason or "failed") for path, reason in failed)
    return Tally(int(total or 0), len(failures), "frames", failures)


def per_frame(step: str) -> Callable[[NightContext, Any], Tally]:
    """The tally of a per-frame step whose runs are recorded as ``step``."""
    return lambda ctx, _summary: frame_tally(ctx, step)


def scan_tally(ctx: NightContext, _summary: Any) -> Tally:
    """The files under the raw folders, and the unreadable ones (``bad``) with their reasons."""
    with ctx.db.session() as session:
        rows = session.execute(
            select(Frame.path, Frame.status, Frame.error)
            .where(under_folders(ctx.raw_dirs), Frame.status.in_(("ok", "bad")))
            .order_by(Frame.path)
        ).all()
    bad = {path: error for path, status, error in rows if status == "bad"}
    failures = tuple((Path(path).name, _without_path(error, path)) for path, error in bad.items())
    return Tally(len({path for path, _, _ in rows}), len(failures), "files", failures)


def _without_path(error: str | None, path: str) -> str:
    return (error or "unreadable").removeprefix(f"{path}: ")


def masters_tally(_ctx: NightContext, summary: Any) -> Tally:
    """Masters built, kept or failed (a frame left out of a master is listed, not counted)."""
    failed = tuple((str(label), str(reason)) for label, reason in summary.failed)
    total = len(summary.built) + len(summary.skipped) + len(failed)
    return Tally(total, len(failed), "masters", failed)


def lightcurves_tally(_ctx: NightContext, summary: Any) -> Tally:
    """Targets fitted or failed."""
    failed = tuple((str(name), str(reason)) for name, reason in summary.failed)
    return Tally(len(summary.targets) + len(failed), len(failed), "targets", failed)
