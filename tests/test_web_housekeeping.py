"""``nightpipe web clean``: old finished jobs and unused uploads go (files before rows); active
jobs and what they use stay; a dry run deletes nothing."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from nightpipe.store.base import utcnow
from nightpipe.store.db import Database, open_database
from nightpipe.web.accounts import create_user
from nightpipe.web.housekeeping import clean
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.models import Job, JobEvent, Upload
from nightpipe.web.paths import UserPaths

OLD = utcnow() - timedelta(days=40)


def setup(db: Database, data: Path) -> dict[str, int]:
    """ann: an old done job, an old running job, an old upload used by a queued job, an old unused
    upload, a new done job; bob: an old calibration upload his running frame job needs."""
    ids: dict[str, int] = {}
    with db.session() as session:
        ann = create_user(session, "ann", "correct horse battery")
        bob = create_user(session, "bob", "correct horse battery")
        for owner, name, kind in ((ann, "used", "light"), (ann, "unused", "light"), (bob, "bias", "bias")):
            paths = UserPaths(data, owner.id).make()
            (paths.uploads / f"{name}.fits").write_bytes(b"x" * 100)
            row = Upload(owner_id=owner.id, name=name, path=f"{name}.fits", size=100, summary={"kind": kind})
            session.add(row)
            session.flush()
            row.created_at = OLD
            ids[name] = row.id
        for name, owner, status, kind, params in (
            ("old_done", ann, "done", "night", {"upload_ids": [ids["unused"]]}),
            ("old_running", ann, "running", "night", {"upload_ids": []}),
            ("queued", ann, "queued", "night", {"upload_ids": [ids["used"]]}),
            ("new_done", ann, "done", "night", {"upload_ids": []}),
            ("frame", bob, "running", "frame", {"upload_ids": []}),
        ):
            job = enqueue(session, owner.id, kind, name, params)
            job.status = status
            if name != "new_done":
                job.created_at = OLD
            if status == "done":
                job.finished_at = OLD if name == "old_done" else utcnow()
            out = UserPaths(data, owner.id).job_output(job.id)
            out.mkdir(parents=True)
            (out / "report.html").write_text("a report")
            ids[name] = job.id
    return ids


def test_clean_deletes_old_finished_jobs_and_unused_uploads_only(tmp_path: Path, db_url: str) -> None:
    db, data = open_database(db_url), tmp_path / "web"
    ids = setup(db, data)
    ann_paths = UserPaths(data, 1)
    would = clean(db, data, 30, dry_run=True)
    assert {(d.user, d.kind, d.id) for d in would} == {
        ("ann", "job", ids["old_done"]),
        ("ann", "upload", ids["unused"]),
    }
    assert all(d.age_days > 39 and d.size == (8 if d.kind == "job" else 100) for d in would)
    assert ann_paths.job_dir(ids["old_done"]).exists() and (ann_paths.uploads / "unused.fits").exists()
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 5  # the dry run deleted nothing
    gone = clean(db, data, 30)
    assert [(d.kind, d.id) for d in gone] == [(d.kind, d.id) for d in would]
    assert (
        not ann_paths.job_dir(ids["old_done"]).exists() and not (ann_paths.uploads / "unused.fits").exists()
    )
    with db.session() as session:
        assert session.get(Job, ids["old_done"]) is None
        assert session.scalar(select(func.count()).where(JobEvent.job_id == ids["old_done"])) == 0
        assert session.get(Upload, ids["unused"]) is None
        for kept in ("old_running", "queued", "new_done", "frame"):
            assert session.get(Job, ids[kept]) is not None
            assert UserPaths(data, session.get(Job, ids[kept]).owner_id).job_dir(ids[kept]).exists()  # type: ignore[union-attr]
        assert session.get(Upload, ids["used"]) is not None and session.get(Upload, ids["bias"]) is not None
    assert clean(db, data, 30) == []
    with db.session() as session:  # once the queued job finished, its upload may go too
        session.execute(
            update(Job).where(Job.id == ids["queued"]).values(status="cancelled", finished_at=OLD)
        )
    assert {(d.kind, d.id) for d in clean(db, data, 30)} == {("job", ids["queued"]), ("upload", ids["used"])}


def test_cli_web_clean_dry_run_then_clean(tmp_path: Path) -> None:
    data = tmp_path / "web"
    url = f"sqlite:///{data / 'web.sqlite'}"
    ids = setup(open_database(url), data)
    base = [
        sys.executable,
        "-m",
        "nightpipe.cli.app",
        "--set",
        f"web.data_dir={data}",
        "--set",
        f"web.database_url={url}",
    ]
    dry = subprocess.run(
        [*base, "web", "clean", "--dry-run"], check=False, capture_output=True, text=True, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    rows = [line.split()[:3] for line in dry.stdout.splitlines()]
    assert ["ann", "job", str(ids["old_done"])] in rows and ["ann", "upload", str(ids["unused"])] in rows
    assert "would delete 2 item(s)" in dry.stdout
    assert UserPaths(data, 1).job_dir(ids["old_done"]).exists()
    keep = subprocess.run(
        [*base, "web", "clean", "--days", "50"], check=False, capture_output=True, text=True, timeout=120
    )
    assert keep.returncode == 0 and "deleted 0 item(s)" in keep.stdout
    real = subprocess.run([*base, "web", "clean"], check=False, capture_output=True, text=True, timeout=120)
    assert real.returncode == 0 and "deleted 2 item(s)" in real.stdout, real.stdout + real.stderr
    assert not UserPaths(data, 1).job_dir(ids["old_done"]).exists()
