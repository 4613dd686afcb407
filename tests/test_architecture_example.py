"""The ten-line step of docs/architecture.md works as the document says, and the document shows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from sqlalchemy import select

from example_step import MedianStep
from nightpipe.config import ParallelConfig
from nightpipe.pipeline.framestep import FrameTask, run_frame_step
from nightpipe.store import open_database
from nightpipe.store.models import Frame, StepRun

ROOT = Path(__file__).resolve().parents[1]


def test_the_document_shows_the_tested_step() -> None:
    source = (ROOT / "tests" / "example_step.py").read_text()
    shown = (ROOT / "docs" / "architecture.md").read_text()
    step = source[source.index("class MedianStep:") :].strip()
    assert step in shown
    assert len(step.splitlines()) <= 10


def test_the_example_step_runs_skips_and_fails_as_documented(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    paths = [tmp_path / f"f{i}.fits" for i in range(3)]
    for i, path in enumerate(paths[:2]):
        fits.PrimaryHDU(np.full((8, 8), 10.0 * (i + 1), np.float32)).writeto(path)
    paths[2].write_text("not FITS")
    with db.session() as session:
        for i, path in enumerate(paths):
            session.add(Frame(id=i + 1, path=str(path), size=0, mtime=0.0, sha1=f"s{i}", night="2020-01-01"))
    with db.session() as session:
        frames = session.scalars(select(Frame).order_by(Frame.id)).all()
        tasks = [FrameTask(f.id, f.night, f"{f.sha1}", Path(f.path), f.path) for f in frames]

    tally = run_frame_step(MedianStep(), tasks, db, ParallelConfig(threads=2))
    assert [t.frame_id for t in tally.done] == [1, 2]
    ((failed, reason),) = tally.failures
    assert failed.frame_id == 3 and str(paths[2]) in reason
    with db.session() as session:
        runs = {r.frame_id: r for r in session.scalars(select(StepRun).where(StepRun.step == "median"))}
        assert runs[1].details == {"median": 10.0} and runs[2].details == {"median": 20.0}
        assert runs[3].status == "failed"

    again = run_frame_step(MedianStep(), tasks, db, ParallelConfig(threads=2))
    assert again.ok == 0 and [t.frame_id for t in again.skipped] == [1, 2] and again.failed == 1
    db.dispose()
