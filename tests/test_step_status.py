"""Honest step status: ``ok``, ``partial`` (n of m frames failed), ``failed`` (all failed, or the
step could not run), counted from the database as the night report shows it, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightpipe.config import Settings, load_settings
from nightpipe.errors import AstrometryError
from nightpipe.pipeline.runner import NightContext, Step, run_steps
from nightpipe.pipeline.tallies import per_frame, scan_tally
from nightpipe.report.night_report import write_night_report
from nightpipe.store import open_database
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.steps import record_step

NIGHT = "2020-01-01"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        overrides=[
            f"paths.output={str(tmp_path / 'out')!r}",
            f"database.url='sqlite:///{tmp_path}/db.sqlite'",
        ],
        environ={},
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = open_database(settings.database.url)
    yield database
    database.dispose()


def _frames(db: Database, folder: str, n: int, night: str = NIGHT) -> list[int]:
    with db.session() as s:
        frames = [
            Frame(path=f"{folder}/f{i}.fits", size=1, mtime=0, kind="light", night=night) for i in range(n)
        ]
        s.add_all(frames)
        s.flush()
        return [f.id for f in frames]


def _record(db: Database, step: str, ids: list[int], failing: set[int]) -> None:
    """``step`` ran on every frame of ``ids``; those at positions ``failing`` failed."""
    with db.session() as s:
        for i, frame_id in enumerate(ids):
            failed = i in failing
            record_step(
                s,
                step=step,
                status="failed" if failed else "ok",
                frame_id=frame_id,
                night=NIGHT,
                reason=f"frame {i}: no stars" if failed else None,
            )


def test_a_step_is_ok_partial_or_failed_by_its_frames(settings: Settings, db: Database) -> None:
    ids = _frames(db, "/raw/n1", 8)

    def step(name: str, failing: set[int]) -> Step:
        return Step(name, "", (), (), lambda ctx: _record(db, name, ids, failing), per_frame(name))

    steps = [step("calibrate", set()), step("solve", set(range(8))), step("photometry", {2, 5})]
    summary = run_steps(steps, NightContext(settings=settings, db=db, raw_dirs=(), night=NIGHT))
    statuses = {s.name: (s.status, s.tally.describe() if s.tally else None) for s in summary.steps}
    assert statuses == {
        "calibrate": ("ok", "8 frames"),
        "solve": ("failed", "8 of 8 frames failed"),  # was "ok": the step itself had not raised
        "photometry": ("partial", "2 of 8 frames failed"),
    }
    photometry = summary.steps[2]
    assert photometry.tally is not None
    assert photometry.tally.failures == (("f2.fits", "frame 2: no stars"), ("f5.fits", "frame 5: no stars"))
    assert summary.failed_steps == ("solve",) and summary.failed_frames == 10
    assert summary.exit_code == 1
    with db.session() as s:  # the night's rows say the same, for the report
        rows = {r.step: r.status for r in s.query(StepRun).filter(StepRun.step.startswith("night:"))}
    assert rows == {"night:calibrate": "ok", "night:solve": "failed", "night:photometry": "partial"}


def test_a_rerun_that_skips_failed_frames_is_still_partial(settings: Settings, db: Database) -> None:
    """Frames that failed before and are not tried again (same input, same failure) still count."""
    ids = _frames(db, "/raw/n1", 4)
    _record(db, "zeropoint", ids, {0})
    rerun = Step("zeropoints", "", (), (), lambda ctx: {"processed": 0, "skipped": 4}, per_frame("zeropoint"))
    summary = run_steps([rerun], NightContext(settings=settings, db=db, raw_dirs=(), night=NIGHT))
    assert summary.steps[0].status == "partial" and summary.exit_code == 1


def test_only_the_nights_frames_count(settings: Settings, db: Database) -> None:
    mine, other = _frames(db, "/raw/n1", 3), _frames(db, "/raw/n2", 3, night="2020-01-02")
    _record(db, "solve", mine, set())
    _record(db, "solve", other, {0, 1, 2})
    context = NightContext(settings=settings, db=db, raw_dirs=(), night=NIGHT)
    tally = per_frame("solve")(context, None)
    assert (tally.total, tally.failed, tally.status) == (3, 0, "ok")


def test_scan_counts_the_files_under_the_raw_folders(settings: Settings, db: Database) -> None:
    _frames(db, "/raw/n1", 3)
    _frames(db, "/raw/n10", 2)  # a folder whose name starts like the raw folder's: not counted
    with db.session() as s:
        s.add(
            Frame(
                path="/raw/n1/notes.fits", size=1, mtime=0, status="bad", error="/raw/n1/notes.fits: not FITS"
            )
        )
        s.add(Frame(path="/raw/n1/gone.fits", size=1, mtime=0, status="missing"))
    context = NightContext(settings=settings, db=db, raw_dirs=(Path("/raw/n1"),))
    tally = scan_tally(context, None)
    assert tally.describe() == "1 of 4 files failed" and tally.status == "partial"
    assert tally.failures == (("notes.fits", "not FITS"),)


def test_a_step_error_fails_the_step_and_a_summary_counts_its_failures(
    settings: Settings, db: Database
) -> None:
    def broken(ctx: NightContext) -> None:
        raise AstrometryError("no index files", hint="install astrometry-data-tycho2")

    steps = [
        Step("solve", "", (), (), broken),
        Step("counted", "", (), (), lambda ctx: {"frames": 5, "failed": 1}),
        Step("silent", "", (), (), lambda ctx: {"skipped": "nothing to count"}),
    ]
    summary = run_steps(steps, NightContext(settings=settings, db=db, raw_dirs=(), night=NIGHT))
    assert [s.status for s in summary.steps] == ["failed", "partial", "ok"]
    assert "no index files" in (summary.steps[0].error or "")


def test_report_lists_every_failure_in_step_order(settings: Settings, db: Database) -> None:
    ids = _frames(db, "/raw/n1", 4)
    _record(db, "photometry", ids, {1})
    _record(db, "solve", ids, {0, 1, 2, 3})
    with db.session() as s:
        record_step(
            s, step="night:solve", status="failed", night=NIGHT, details={"tally": "4 of 4 frames failed"}
        )
        record_step(
            s, step="night:zeropoints", status="failed", night=NIGHT, reason="zeropoints: [catalog] offline"
        )
        record_step(
            s, step="lightcurve", status="failed", night=NIGHT, reason="every target failed",
            details={"DEMO-1": {"status": "failed", "reason": "not found"}, "DEMO-2": {"status": "ok"}},
        )  # fmt: skip
    page = write_night_report(settings, db, NIGHT).html.read_text()
    failures = page.split("<h2>Failures</h2>")[1].split("<h2>")[0]
    rows = [r.split("</td><td>") for r in failures.split("<tr><td>")[1:]]
    steps_files = [(r[0], r[1]) for r in rows]
    assert steps_files == [
        *[("solve", f"f{i}.fits") for i in range(4)],
        ("photometry", "f1.fits"),
        ("zeropoints", "(night)"),
        ("lightcurve", "(target DEMO-1)"),
    ]  # the night:solve row adds nothing to its four frames
    assert "frame 3: no stars" in failures and "[catalog] offline" in failures and "not found" in failures
    assert "7 failures" in page
