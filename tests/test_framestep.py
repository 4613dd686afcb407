"""The per-frame step contract: skipping, parallel order, failures, batching, on a small real step.

The step here doubles the number in a text file per frame and writes it to an output file;
it runs through the same :func:`run_frame_step` as photometry, on a real SQLite database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.config import ParallelConfig
from nightpipe.errors import NightpipeError
from nightpipe.pipeline.framestep import FrameTask, StepRecord, run_frame_step
from nightpipe.progress import CountingProgress
from nightpipe.store import open_database
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun


@dataclass(frozen=True)
class Job:
    source: Path
    out: Path


@dataclass
class Doubler:
    """Doubles the number in ``source`` into ``out``; "bad" is a user error, "crash" a bug."""

    name: str = "double"
    store_batch: int = 2
    retry_failed: bool = True
    stored: list[tuple[int, int, int]] = field(default_factory=list)  # (transaction, frame, value)
    fail_store_at: int | None = None

    def process(self, job: Job) -> int:
        text = job.source.read_text()
        if text == "bad":
            raise NightpipeError(f"{job.source}: not a number", hint="write a number in it")
        if text == "crash":
            raise ValueError("a bug")
        value = 2 * int(text)
        time.sleep(0.05 if value == 2 else 0.0)  # the first frame finishes last with two threads
        job.out.write_text(str(value))
        return value

    def store(self, session: Session, task: FrameTask[Job], result: int) -> StepRecord:
        if self.fail_store_at is not None and len(self.stored) == self.fail_store_at:
            raise RuntimeError("database went away")
        if "batch" not in session.info:  # the first frame of a transaction
            session.info["batch"] = len({batch for batch, _, _ in self.stored}) + 1
        self.stored.append((session.info["batch"], task.frame_id, result))
        return StepRecord(output_path=str(task.item.out), details={"value": result})


def _night(tmp_path: Path, texts: list[str]) -> tuple[Database, list[FrameTask[Job]]]:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.session() as session:
        for i, _ in enumerate(texts):
            path = str(tmp_path / f"f{i}.txt")
            session.add(Frame(id=i + 1, path=path, size=0, mtime=0.0, night="2020-01-01"))
    for i, text in enumerate(texts):
        (tmp_path / f"f{i}.txt").write_text(text)
    return db, _tasks(tmp_path, len(texts))


def _tasks(tmp_path: Path, n: int) -> list[FrameTask[Job]]:
    tasks = []
    for i in range(n):
        source, out = tmp_path / f"f{i}.txt", tmp_path / f"f{i}.out"
        job = Job(source, out)
        key = source.read_text()  # the input's content keys the work
        tasks.append(FrameTask(i + 1, "2020-01-01", key, job, str(source), outputs=(out,)))
    return tasks


def _runs(db: Database) -> dict[int, StepRun]:
    with db.session() as session:
        rows = session.scalars(select(StepRun).where(StepRun.step == "double")).all()
        session.expunge_all()
    return {r.frame_id: r for r in rows if r.frame_id is not None}


@pytest.fixture
def threads() -> ParallelConfig:
    return ParallelConfig(threads=2)


def test_every_frame_is_done_stored_and_recorded_in_frame_order(
    tmp_path: Path, threads: ParallelConfig
) -> None:
    db, tasks = _night(tmp_path, ["1", "2", "3", "4", "5"])
    step, progress = Doubler(), CountingProgress()
    tally = run_frame_step(step, tasks, db, threads, progress=progress)
    assert [t.frame_id for t in tally.done] == [1, 2, 3, 4, 5] and tally.failed == 0
    assert [(tmp_path / f"f{i}.out").read_text() for i in range(5)] == ["2", "4", "6", "8", "10"]
    runs = _runs(db)
    assert {f: (r.status, r.input_hash, r.details) for f, r in runs.items()} == {
        i + 1: ("ok", str(i + 1), {"value": 2 * (i + 1)}) for i in range(5)
    }
    assert all(r.seconds is not None and r.output_path for r in runs.values())
    assert progress.total == 5 and sorted(map(str, progress.items)) == [f"f{i}.txt" for i in range(5)]
    # two frames per transaction, then the last one alone
    assert [batch for batch, _, _ in step.stored] == [1, 1, 2, 2, 3]


def test_unchanged_frames_are_skipped_and_changed_ones_redone(
    tmp_path: Path, threads: ParallelConfig
) -> None:
    db, tasks = _night(tmp_path, ["1", "2", "3"])
    run_frame_step(Doubler(), tasks, db, threads)
    again = run_frame_step(Doubler(), tasks, db, threads)
    assert again.ok == 0 and [t.frame_id for t in again.skipped] == [1, 2, 3]

    (tmp_path / "f1.txt").write_text("7")  # a changed input
    (tmp_path / "f2.out").unlink()  # a lost output
    step = Doubler()
    third = run_frame_step(step, _tasks(tmp_path, 3), db, threads)
    assert [t.frame_id for t in third.done] == [2, 3] and [t.frame_id for t in third.skipped] == [1]
    assert (tmp_path / "f1.out").read_text() == "14" and _runs(db)[2].input_hash == "7"

    forced = run_frame_step(Doubler(), _tasks(tmp_path, 3), db, threads, force=True)
    assert forced.ok == 3


def test_a_bad_frame_is_recorded_with_its_reason_and_the_night_goes_on(
    tmp_path: Path, threads: ParallelConfig, caplog: pytest.LogCaptureFixture
) -> None:
    db, tasks = _night(tmp_path, ["1", "bad", "3", "crash", "5"])
    with caplog.at_level(logging.WARNING):
        tally = run_frame_step(Doubler(), tasks, db, threads)
    assert [t.frame_id for t in tally.done] == [1, 3, 5]
    reasons = {t.frame_id: reason for t, reason in tally.failures}
    assert reasons[2].startswith(f"{tmp_path / 'f1.txt'}: not a number") and "write a number" in reasons[2]
    assert reasons[4] == f"{tmp_path / 'f3.txt'}: unexpected error: ValueError('a bug')"
    runs = _runs(db)
    assert runs[2].status == runs[4].status == "failed" and runs[2].reason == reasons[2]
    assert runs[2].input_hash is None  # retried next time
    assert "not a number" in caplog.text and "a bug" in caplog.text
    assert run_frame_step(Doubler(), tasks, db, threads).failed == 2  # tried again


def test_a_step_that_does_not_retry_failures_skips_them_until_their_input_changes(
    tmp_path: Path, threads: ParallelConfig
) -> None:
    db, tasks = _night(tmp_path, ["1", "bad"])
    assert run_frame_step(Doubler(retry_failed=False), tasks, db, threads).failed == 1
    assert _runs(db)[2].input_hash == "bad"
    again = run_frame_step(Doubler(retry_failed=False), tasks, db, threads)
    assert again.failed == 0 and len(again.skipped) == 2
    (tmp_path / "f1.txt").write_text("4")
    fixed = run_frame_step(Doubler(retry_failed=False), _tasks(tmp_path, 2), db, threads)
    assert [t.frame_id for t in fixed.done] == [2] and _runs(db)[2].status == "ok"


def test_a_failed_transaction_records_none_of_its_frames(tmp_path: Path) -> None:
    db, tasks = _night(tmp_path, ["1", "2", "3", "4"])
    with pytest.raises(RuntimeError, match="database went away"):
        run_frame_step(Doubler(fail_store_at=3), tasks, db, ParallelConfig(threads=1))
    runs = _runs(db)
    assert sorted(runs) == [1, 2]  # the first batch committed; frame 3 and 4 are done again next time
    tally = run_frame_step(Doubler(), tasks, db, ParallelConfig(threads=1))
    assert [t.frame_id for t in tally.done] == [3, 4]
