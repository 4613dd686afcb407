"""Real jobs through a real worker: a night job's products are those of ``nightpipe run`` on the
same frames; a frame job measures one light frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import select

from nightpipe import api
from nightpipe.config import load_settings
from nightpipe.store.db import open_database
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.models import Job
from nightpipe.web.paths import UserPaths
from nightpipe.web.worker import WorkerState, work
from web_jobs_helpers import user_with_uploads

SIZE, LIGHTS = 512, 12


@pytest.mark.slow
def test_a_night_job_makes_the_products_of_nightpipe_run(tmp_path: Path, demo_night: Any) -> None:
    root, raw = demo_night(SIZE, LIGHTS)
    data = tmp_path / "web"
    sets = [
        f"web.data_dir={data}",
        f"web.database_url=sqlite:///{data / 'web.sqlite'}",
        f"paths.cache={tmp_path / 'c'}",
    ]
    server = load_settings(root / "nightpipe.toml", overrides=sets, environ={})
    db = open_database(server.web.database())
    user_id, ids = user_with_uploads(db, data, "ann", raw)
    with db.session() as session:
        all_ids = sorted(i for group in ids.values() for i in group)
        night = enqueue(session, user_id, "night", "night", {"upload_ids": all_ids}).id
        frame = enqueue(session, user_id, "frame", "frame", {"upload_ids": [ids["light"][0]]}).id
    assert work(db, server, WorkerState(), once=True) == 2
    paths = UserPaths(data, user_id)
    with db.session() as session:
        job = session.get(Job, night)
        assert job is not None
        assert job.status in ("done", "partial"), job.error
        steps = {s["name"]: s["status"] for s in (job.result or {})["steps"]}
        assert {"scan", "calibrate", "photometry", "report"} <= set(steps)
        frame_job = session.scalar(select(Job).where(Job.id == frame))
        assert frame_job is not None
        assert frame_job.status in ("done", "partial"), frame_job.error
        frame_steps = {s["name"] for s in (frame_job.result or {})["steps"]}
        assert "photometry" in frame_steps and "lightcurves" not in frame_steps
    output = paths.job_output(night)
    assert any(output.rglob("*.html")), "no report in the job folder"
    assert any(paths.job_output(frame).rglob("*sources*")), "the frame job made no source table"
    reference = tmp_path / "reference"
    ref_settings = load_settings(
        root / "nightpipe.toml",
        overrides=[
            f"paths.output={reference}",
            f"paths.masters={reference / 'masters'}",
            f"paths.cache={tmp_path / 'c'}",
            f"database.url=sqlite:///{tmp_path / 'ref.sqlite'}",
        ],
        environ={},
    )
    run = api.run_night([raw], ref_settings)
    assert run.exit_code in (0, 1)
    # the products are the same but for the paths they name (raw frames, masters, output folder)
    lightcurves = sorted(p.relative_to(reference) for p in reference.glob("lightcurves/*/*"))
    assert any(p.suffix == ".csv" for p in lightcurves)
    for rel in lightcurves:
        if rel.suffix == ".csv":
            assert (output / rel).read_bytes() == (reference / rel).read_bytes(), rel
        elif rel.name.endswith("_fit.json"):
            ours = json.loads((output / rel).read_text().replace(str(output), "OUT"))
            theirs = json.loads((reference / rel).read_text().replace(str(reference), "OUT"))
            assert ours == theirs
    calibrated = sorted(reference.glob("calibrated/*/*.fits"))
    assert len(calibrated) == LIGHTS
    for frame_path in calibrated:
        mine = output / frame_path.relative_to(reference)
        assert np.array_equal(fits.getdata(mine), fits.getdata(frame_path), equal_nan=True), mine.name
