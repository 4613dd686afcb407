"""Running one claimed job on the engine (:mod:`nightpipe.api`), as ``nightpipe run`` would.

A "night" job runs every step on the chosen uploads; a "frame" job runs the per-frame steps
(calibrate when the user's uploads hold calibration frames, solve, detect and measure, zero
point, identification) and the report on one light frame. Both link the uploads into the job's
``input/`` folder; the raw uploads are never modified.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.inventory.queries import CALIBRATION_KINDS
from nightpipe.pipeline.interrupt import Interrupted, StopRequest
from nightpipe.store.db import Database
from nightpipe.web.job_progress import JobLogHandler, JobProgress
from nightpipe.web.job_settings import job_settings
from nightpipe.web.jobqueue import Claim
from nightpipe.web.models import ApiKey, Profile, Upload
from nightpipe.web.paths import UserPaths

log = logging.getLogger(__name__)

FRAME_STEPS = ("scan", "masters", "calibrate", "solve", "photometry", "zeropoints", "identify", "report")


@dataclass(frozen=True)
class Outcome:
    """How a job ended: a status of :mod:`nightpipe.web.jobqueue`, the reason, a summary."""

    status: str
    error: str | None = None
    result: dict[str, Any] | None = None


def link_inputs(paths: UserPaths, job_id: int, uploads: list[Upload]) -> None:
    """Hard links (copies across file systems) of the uploads into the job's input folder."""
    target = paths.job_input(job_id)
    target.mkdir(parents=True, exist_ok=True)
    for upload in uploads:
        source = paths.uploads / upload.path
        dest = target / source.name
        if dest.exists():
            continue
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)


def chosen_uploads(db: Database, claim: Claim) -> list[Upload]:
    """The job's uploads (only the owner's: a foreign id is ignored), with a frame job's
    calibration frames."""
    ids = [int(i) for i in claim.params.get("upload_ids", [])]
    with db.session() as session:
        rows = list(
            session.scalars(select(Upload).where(Upload.owner_id == claim.owner_id, Upload.id.in_(ids)))
        )
        if claim.kind == "frame":
            rows += [u for u in calibration_uploads(session, {claim.owner_id}) if u.id not in ids]
    return rows


def calibration_uploads(session: Session, owner_ids: set[int]) -> list[Upload]:
    """The bias, dark and flat frames these users uploaded (what a frame job calibrates with)."""
    rows = session.scalars(select(Upload).where(Upload.owner_id.in_(owner_ids)))
    return [u for u in rows if str((u.summary or {}).get("kind", "")) in CALIBRATION_KINDS]


def profile_settings(db: Database, claim: Claim) -> dict[str, Any] | None:
    profile_id = claim.params.get("profile_id")
    if profile_id is None:
        return None
    with db.session() as session:
        profile = session.scalar(
            select(Profile).where(Profile.id == int(profile_id), Profile.owner_id == claim.owner_id)
        )
        return dict(profile.settings) if profile is not None else None


def service_keys(db: Database, claim: Claim, data_dir: Path) -> dict[str, str]:
    """The job owner's outside-service keys, decrypted for this run only (never logged)."""
    from nightpipe.web.secrets_box import decrypt, load_key

    with db.session() as session:
        rows = list(session.scalars(select(ApiKey).where(ApiKey.owner_id == claim.owner_id)))
    if not rows:
        return {}
    key = load_key(data_dir)
    return {row.service: decrypt(key, row.secret) for row in rows}


def summary_of(run: Any) -> dict[str, Any]:
    """A JSON summary of a :class:`~nightpipe.pipeline.night.NightRun`."""
    from nightpipe.store.values import jsonable

    steps = [
        {
            "name": s.name,
            "status": s.status,
            "wall_s": round(s.wall_s, 2),
            "error": s.error,
            "summary": jsonable(dict(s.summary)),
        }
        for s in run.steps
    ]
    return {"exit_code": run.exit_code, "nights": sorted(run.nights), "steps": steps}


def stopped_at(exc: Interrupted) -> str:
    """Where a cancelled run stopped: ``stopped at photometry, 6 of 24 frames done``."""
    where = f"stopped at {exc.step}" if exc.step else "stopped before the first step"
    if exc.done is not None and exc.total is not None:
        where += f", {exc.done} of {exc.total} frames done"
    return where + " (what was done is kept)"


def run_claim(db: Database, server: Settings, claim: Claim, stop: StopRequest) -> Outcome:
    """Run ``claim`` to its end; never raises for the job's own failures."""
    from nightpipe import api

    paths = UserPaths(server.web.data_dir, claim.owner_id).make()
    handler = JobLogHandler(db, claim.job_id, paths.job_log(claim.job_id))
    engine_log = logging.getLogger("nightpipe")
    handler.attach(engine_log)
    try:
        uploads = chosen_uploads(db, claim)
        if not uploads:
            return Outcome("failed", "none of the job's uploads exists any more: upload the frames again")
        link_inputs(paths, claim.job_id, uploads)
        keys = service_keys(db, claim, server.web.data_dir)
        settings = job_settings(server, profile_settings(db, claim), paths, claim.job_id, keys)
        steps = FRAME_STEPS if claim.kind == "frame" else None
        run = api.run_night(
            [paths.job_input(claim.job_id)],
            settings,
            steps=steps,
            progress=JobProgress(db, claim.job_id),
            stop=stop,
        )
        result = summary_of(run)
        if run.exit_code == 0:
            return Outcome("done", result=result)
        failed = ", ".join(s["name"] for s in result["steps"] if s["status"] != "ok")
        status = "partial" if run.exit_code == 1 else "failed"
        return Outcome(status, f"not everything succeeded: {failed}", result)
    except Interrupted as exc:
        return Outcome("cancelled", stopped_at(exc))
    except NightpipeError as exc:
        return Outcome("failed", str(exc))
    except Exception as exc:
        log.exception("job %d crashed", claim.job_id)
        return Outcome("failed", f"unexpected error: {exc.__class__.__name__}: {exc} (see the job's log)")
    finally:
        handler.detach(engine_log)
        handler.close()
