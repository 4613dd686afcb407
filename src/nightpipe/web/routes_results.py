"""A job's results: the frame viewer (PNG + overlay), source tables, the light curve, the report, the ZIP.

Every route takes the job through ``owned_job`` (another user's job answers 404, as no job does).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from nightpipe.web.deps import Ctx, JobDep, UserDep
from nightpipe.web.job_views import job_dict
from nightpipe.web.pages import render
from nightpipe.web.paths import UserPaths
from nightpipe.web.results.archive import product_files, zip_stream
from nightpipe.web.results.imaging import STRETCHES, overlay_json, render_png
from nightpipe.web.results.lightcurve import lightcurve_json
from nightpipe.web.results.products import (
    FRAME_STEPS,
    FrameProducts,
    JobProducts,
    job_products,
    source_table,
)

router = APIRouter()

#: The engine's report is self-contained (inline styles, data: images): it may load nothing else.
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)


def _paths(ctx: Ctx, user_id: int) -> UserPaths:
    return UserPaths(ctx.data_dir, user_id)


def products_of(ctx: Ctx, user_id: int, job_id: int) -> JobProducts:
    paths = _paths(ctx, user_id)
    return job_products(paths.job_output(job_id), paths.job_db_url(job_id))


def _frame(products: JobProducts, frame_id: int) -> FrameProducts:
    frame = products.frame(frame_id)
    if frame is None:
        raise HTTPException(404, "no such frame in this job")
    return frame


def frame_rows(products: JobProducts) -> list[dict[str, Any]]:
    """The frames of a job for the pages: steps with status and reason."""
    return [
        {
            "id": f.id,
            "name": f.name,
            "night": f.night,
            "mid_utc": f.mid_utc,
            "calibrated": f.calibrated is not None,
            "image": f.image is not None,
            "n_sources": f.n_sources,
            "fwhm_px": f.fwhm_px,
            "steps": {k: {"status": s.status, "reason": s.reason} for k, s in f.steps.items()},
        }
        for f in products.frames
    ]


@router.get("/jobs/{job_id}/frames")
def frames_fragment(request: Request, ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    """The per-frame table of the job page (loaded by htmx): each step's status with its reason."""
    rows = frame_rows(products_of(ctx, user.id, job.id))
    return render(request, "results/_frames.html", job_id=job.id, frames=rows, steps=FRAME_STEPS)


@router.get("/jobs/{job_id}/viewer")
def viewer_first(request: Request, ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    products = products_of(ctx, user.id, job.id)
    first = next((f for f in products.frames if f.image is not None), None)
    if first is None:
        return render(request, "results/empty.html", job=job_dict(job), what="calibrated frames")
    return viewer(request, ctx, user, job, first.id)


@router.get("/jobs/{job_id}/viewer/{frame_id}")
def viewer(request: Request, ctx: Ctx, user: UserDep, job: JobDep, frame_id: int) -> Response:
    products = products_of(ctx, user.id, job.id)
    frame = _frame(products, frame_id)
    return render(
        request,
        "results/viewer.html",
        job=job_dict(job),
        frame=frame,
        frames=[f for f in products.frames if f.image is not None],
        stretches=STRETCHES,
    )


@router.get("/jobs/{job_id}/frames/{frame_id}/image.png")
async def frame_png(ctx: Ctx, user: UserDep, job: JobDep, frame_id: int, stretch: str = "zscale") -> Response:
    if stretch not in STRETCHES:
        raise HTTPException(422, f"unknown stretch {stretch!r}: use one of {', '.join(STRETCHES)}")
    frame = _frame(products_of(ctx, user.id, job.id), frame_id)
    if frame.image is None:
        raise HTTPException(404, "this frame has no image any more (see its calibrate step)")
    cache = _paths(ctx, user.id).job_dir(job.id) / "web-cache"
    png = await run_in_threadpool(render_png, frame.image, stretch, cache_dir=cache)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/jobs/{job_id}/frames/{frame_id}/overlay.json")
def frame_overlay(ctx: Ctx, user: UserDep, job: JobDep, frame_id: int) -> dict[str, Any]:
    products = products_of(ctx, user.id, job.id)
    return overlay_json(_frame(products, frame_id), products.output, _paths(ctx, user.id).job_db_url(job.id))


@router.get("/jobs/{job_id}/sources")
def sources_first(request: Request, ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    products = products_of(ctx, user.id, job.id)
    first = next((f for f in products.frames if f.sources is not None), None)
    if first is None:
        return render(request, "results/empty.html", job=job_dict(job), what="source tables")
    return sources_page(request, ctx, user, job, first.id)


def _table_rows(frame: FrameProducts) -> tuple[list[str], list[list[Any]]]:
    table = source_table(frame)
    if table is None:
        raise HTTPException(404, "this frame has no source table (see its photometry step)")
    names = [n for n in table.colnames if getattr(table[n], "ndim", 1) == 1]
    radii = table.meta.get("aper_radii_px") or []
    multi = [n for n in table.colnames if n not in names]
    header = names + [f"{n}_r{r:.2f}" for n in multi for r in radii]
    rows = []
    for row in table:
        values = [row[n].item() if hasattr(row[n], "item") else row[n] for n in names]
        values += [float(v) for n in multi for v in row[n]]
        rows.append(values)
    return header, rows


@router.get("/jobs/{job_id}/sources/{frame_id}.csv")
def sources_csv(ctx: Ctx, user: UserDep, job: JobDep, frame_id: int) -> Response:
    frame = _frame(products_of(ctx, user.id, job.id), frame_id)
    header, rows = _table_rows(frame)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    name = f"{Path(frame.name).stem}_sources.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/jobs/{job_id}/sources/{frame_id}")
def sources_page(request: Request, ctx: Ctx, user: UserDep, job: JobDep, frame_id: int) -> Response:
    products = products_of(ctx, user.id, job.id)
    frame = _frame(products, frame_id)
    header, rows = _table_rows(frame)
    return render(
        request,
        "results/sources.html",
        job=job_dict(job),
        frame=frame,
        frames=[f for f in products.frames if f.sources is not None],
        header=header,
        rows=rows,
    )


@router.get("/jobs/{job_id}/lightcurve")
def lightcurve_page(request: Request, ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    products = products_of(ctx, user.id, job.id)
    if not products.lightcurves:
        return render(request, "results/empty.html", job=job_dict(job), what="light curves")
    return render(request, "results/lightcurve.html", job=job_dict(job), curves=products.lightcurves)


@router.get("/api/jobs/{job_id}/lightcurve", tags=["results"])
def api_lightcurve(
    ctx: Ctx, user: UserDep, job: JobDep, night: str | None = None, target: str | None = None
) -> JSONResponse:
    """The light curve (BJD_TDB, relative flux, comparisons, model and residuals when fitted)."""
    lc = products_of(ctx, user.id, job.id).lightcurve(night, target)
    if lc is None:
        raise HTTPException(404, "no light curve in this job (for that night and target)")
    return JSONResponse(lightcurve_json(lc))


@router.get("/api/jobs/{job_id}/frames", tags=["results"])
def api_frames(ctx: Ctx, user: UserDep, job: JobDep) -> list[dict[str, Any]]:
    """The job's light frames with each step's status and reason."""
    return frame_rows(products_of(ctx, user.id, job.id))


@router.get("/jobs/{job_id}/report")
def report(ctx: Ctx, user: UserDep, job: JobDep, night: str | None = None) -> Response:
    reports = products_of(ctx, user.id, job.id).reports
    path = reports.get(night) if night else next(iter(reports.values()), None)
    if path is None:
        raise HTTPException(404, "this job has no report (yet): see its steps")
    return FileResponse(
        path, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP}
    )


@router.get("/jobs/{job_id}/download.zip")
def download_zip(ctx: Ctx, user: UserDep, job: JobDep) -> Response:
    """Every product of the job (calibrated frames, tables, light curves, report...) as one ZIP,
    streamed while it is made."""
    output = _paths(ctx, user.id).job_output(job.id)
    if not product_files(output):
        raise HTTPException(404, "this job has no products (yet): see its steps")
    name = f"nightpipe-job{job.id}.zip"
    return StreamingResponse(
        zip_stream(output, prefix=f"job{job.id}/"),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
