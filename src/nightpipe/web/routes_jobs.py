"""Jobs: the dashboard, starting a job, its page with live progress (server-sent events), cancelling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from nightpipe.web.deps import Ctx, JobDep, UserDep
from nightpipe.web.job_views import (
    counts_of,
    event_dict,
    events_after,
    job_dict,
    jobs_of,
    last_progress,
    profiles_of,
    uploads_of,
)
from nightpipe.web.jobqueue import FINISHED, enqueue, request_cancel
from nightpipe.web.models import Job, Profile, Upload
from nightpipe.web.pages import render
from nightpipe.web.paths import UserPaths

router = APIRouter()
KINDS = {"night": "run a night", "frame": "analyse one frame"}


@router.get("/")
def dashboard(request: Request, ctx: Ctx, user: UserDep) -> Response:
    with ctx.db.session() as session:
        jobs = [job_dict(j) for j in jobs_of(session, user.id, limit=10)]
        counts = counts_of(session, user.id)
    return render(request, "dashboard.html", jobs=jobs, counts=counts)


@router.get("/jobs")
def jobs_page(request: Request, ctx: Ctx, user: UserDep) -> Response:
    with ctx.db.session() as session:
        jobs = [job_dict(j) for j in jobs_of(session, user.id)]
    return render(request, "jobs.html", jobs=jobs)


@router.get("/jobs/new")
def new_job_page(request: Request, ctx: Ctx, user: UserDep, kind: str = "night") -> Response:
    with ctx.db.session() as session:
        uploads = uploads_of(session, user.id)
        profiles = profiles_of(session, user.id)
    return render(
        request, "job_new.html", uploads=uploads, profiles=profiles, kinds=KINDS, kind=kind, error=None
    )


def create_job(
    ctx: Ctx, user_id: int, kind: str, upload_ids: list[int], profile_id: int | None, title: str
) -> Job:
    """Queue a job on the caller's own uploads and profile (anything else: 404 or 400)."""
    if kind not in KINDS:
        raise HTTPException(400, f"unknown job kind {kind!r}: choose one of {', '.join(KINDS)}")
    with ctx.db.session() as session:
        owned = set(
            session.scalars(select(Upload.id).where(Upload.owner_id == user_id, Upload.id.in_(upload_ids)))
        )
        if not upload_ids or owned != set(upload_ids):
            raise HTTPException(404 if upload_ids else 400, "choose files of yours to process")
        if kind == "frame" and len(upload_ids) != 1:
            raise HTTPException(400, "'analyse one frame' takes exactly one file")
        if (
            profile_id is not None
            and session.scalar(
                select(Profile.id).where(Profile.id == profile_id, Profile.owner_id == user_id)
            )
            is None
        ):
            raise HTTPException(404, "no such profile")
        params: dict[str, Any] = {"upload_ids": sorted(upload_ids), "profile_id": profile_id}
        return enqueue(session, user_id, kind, title.strip() or KINDS[kind], params)


@router.post("/jobs")
def start_job(
    ctx: Ctx,
    user: UserDep,
    kind: Annotated[str, Form()],
    upload_ids: Annotated[list[int], Form()],
    profile_id: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
) -> Response:
    job = create_job(ctx, user.id, kind, upload_ids, int(profile_id) if profile_id else None, title)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}")
def job_page(request: Request, ctx: Ctx, job: JobDep) -> Response:
    with ctx.db.session() as session:
        progress = last_progress(session, job.id)
        events = [event_dict(e) for e in events_after(session, job.id, 0)]
    return render(
        request,
        "job.html",
        job=job_dict(job),
        events=events,
        progress=event_dict(progress) if progress else None,
    )


def poll_events(ctx: Ctx, job_id: int, after: int) -> tuple[list[dict[str, Any]], str | None]:
    with ctx.db.session() as session:
        rows = [event_dict(e) for e in events_after(session, job_id, after)]
        status = session.scalar(select(Job.status).where(Job.id == job_id))
    return rows, status


async def event_stream(ctx: Ctx, job_id: int, after: int) -> AsyncIterator[str]:
    """Server-sent events: every new event of the job, then ``end`` once it finished."""
    last, idle = after, 0
    while True:
        rows, status = await run_in_threadpool(poll_events, ctx, job_id, last)
        for row in rows:
            last = row["id"]
            yield f"id: {row['id']}\nevent: job\ndata: {json.dumps(row)}\n\n"
        if status in FINISHED and not rows:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        idle = 0 if rows else idle + 1
        if idle and idle % 30 == 0:
            yield ": keep-alive\n\n"
        await asyncio.sleep(0.5)


@router.get("/jobs/{job_id}/events")
def job_events(request: Request, ctx: Ctx, job: JobDep, after: int = 0) -> StreamingResponse:
    start = int(request.headers.get("last-event-id") or after)
    return StreamingResponse(
        event_stream(ctx, job.id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/jobs/{job_id}/cancel")
def cancel_page(ctx: Ctx, job: JobDep) -> Response:
    with ctx.db.session() as session:
        row = session.get(Job, job.id)
        assert row is not None
        request_cancel(session, row)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}/log")
def job_log(ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    path = UserPaths(ctx.data_dir, user.id).job_log(job.id)
    if not path.exists():
        return PlainTextResponse("the job has not written a log yet\n")
    return FileResponse(path, media_type="text/plain; charset=utf-8")


class NewJob(BaseModel):
    kind: str = Field("night", description="night (the whole `nightpipe run`) or frame (analyse one frame)")
    upload_ids: list[int]
    profile_id: int | None = None
    title: str = ""


@router.get("/api/jobs", tags=["jobs"])
def api_jobs(ctx: Ctx, user: UserDep) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        return [job_dict(j) for j in jobs_of(session, user.id)]


@router.post("/api/jobs", tags=["jobs"], status_code=201)
def api_start_job(ctx: Ctx, user: UserDep, body: NewJob) -> dict[str, Any]:
    job = create_job(ctx, user.id, body.kind, body.upload_ids, body.profile_id, body.title)
    return job_dict(job)


@router.get("/api/jobs/{job_id}", tags=["jobs"])
def api_job(ctx: Ctx, job: JobDep) -> dict[str, Any]:
    return job_dict(job)


@router.get("/api/jobs/{job_id}/events", tags=["jobs"])
def api_job_events(ctx: Ctx, job: JobDep, after: int = 0) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        return [event_dict(e) for e in events_after(session, job.id, after)]


@router.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
def api_cancel(ctx: Ctx, job: JobDep) -> dict[str, Any]:
    with ctx.db.session() as session:
        row = session.get(Job, job.id)
        assert row is not None
        request_cancel(session, row)
        return job_dict(row)
