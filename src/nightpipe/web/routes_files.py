"""Files: the user's uploads (list, upload many files or an archive, delete), as pages and JSON.

Uploads are streamed to the user's ``tmp`` folder by :func:`~nightpipe.web.uploads.stream.receive_multipart`
(never held in memory), checked and moved into ``uploads`` by
:func:`~nightpipe.web.uploads.stream.accept_received`; each accepted file becomes an
:class:`~nightpipe.web.models.Upload` row of the caller. Every query is scoped by the owner; another
user's file id answers 404 (:data:`~nightpipe.web.deps.UploadDep`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select

from nightpipe.web.context import WebContext
from nightpipe.web.deps import Ctx, UploadDep, UserDep
from nightpipe.web.job_views import uploads_of
from nightpipe.web.models import Upload, User
from nightpipe.web.pages import render
from nightpipe.web.paths import UserPaths
from nightpipe.web.uploads import Accepted, Outcome, Rejected, UploadLimits, UploadRejected
from nightpipe.web.uploads.limits import MB, size_text
from nightpipe.web.uploads.names import remove_quietly, sweep_temporary
from nightpipe.web.uploads.stream import accept_received, declared_length, receive_multipart

log = logging.getLogger(__name__)
router = APIRouter()

#: Bytes a multipart request may carry beyond its files (boundaries, part headers, fields).
FORM_OVERHEAD = 64 * 1024


def quota_bytes(ctx: WebContext, user: User) -> int:
    return int((user.quota_mb or ctx.settings.web.quota_mb) * MB)


def used_bytes(ctx: WebContext, user_id: int) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.sum(Upload.size)).where(Upload.owner_id == user_id)) or 0)


def limits_for(ctx: WebContext, user: User) -> UploadLimits:
    web = ctx.settings.web
    return UploadLimits(
        max_file_bytes=int(web.max_file_mb * MB),
        quota_remaining_bytes=max(0, quota_bytes(ctx, user) - used_bytes(ctx, user.id)),
        max_header_bytes=int(web.max_header_kb * 1024),
        max_members=web.max_archive_members,
    )


def upload_dict(upload: Upload) -> dict[str, Any]:
    summary = upload.summary or {}
    return {
        "id": upload.id,
        "name": upload.name,
        "size": upload.size,
        "kind": summary.get("kind"),
        "shape": summary.get("shape"),
        "filter": summary.get("filter"),
        "exptime": summary.get("exptime"),
        "object": summary.get("object"),
        "date_obs": summary.get("date_obs"),
        "created": upload.created_at.isoformat() if getattr(upload, "created_at", None) else None,
    }


def outcome_dict(outcome: Outcome, ids: dict[str, int]) -> dict[str, Any]:
    if isinstance(outcome, Accepted):
        return {
            "status": "accepted",
            "id": ids.get(outcome.name),
            "name": outcome.name,
            "source": outcome.source,
            "size": outcome.size,
            **outcome.summary.as_dict(),
        }
    status = "rejected" if isinstance(outcome, Rejected) else "skipped"
    return {"status": status, "name": outcome.name, "reason": outcome.reason}


class QuotaReachedError(Exception):
    """Uploads that arrived at the same time took the quota: this one is refused whole."""


def store_rows(ctx: WebContext, user_id: int, outcomes: list[Outcome], quota: int) -> dict[str, int]:
    """An Upload row per accepted file (the files are removed again if the rows cannot be written).

    The quota is checked again once the rows are written, in the same transaction: the check
    before the upload cannot see other uploads of the same user running at the same time. The
    rows go in first (on SQLite that takes the write lock, so the sum below sees every committed
    upload; on PostgreSQL the user's row is locked first), then the sum must still fit.
    """
    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    try:
        with ctx.db.session() as session:
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                session.execute(select(User.id).where(User.id == user_id).with_for_update())
            rows = [
                Upload(
                    owner_id=user_id,
                    name=a.name,
                    path=a.path.name,
                    size=a.size,
                    summary={**a.summary.as_dict(), "source": a.source},
                )
                for a in accepted
            ]
            session.add_all(rows)
            session.flush()
            used = session.scalar(select(func.sum(Upload.size)).where(Upload.owner_id == user_id)) or 0
            if rows and used > quota:
                raise QuotaReachedError(f"{size_text(used)} of {size_text(quota)}")
            return {row.name: row.id for row in rows}
    except BaseException:
        for a in accepted:
            remove_quietly(a.path)
        raise


async def receive_and_store(request: Request, ctx: WebContext, user: User) -> list[dict[str, Any]]:
    """Receive the multipart body, check it, store the accepted files; the outcomes as dicts.

    Raises HTTP 413 when the request as a whole is larger than the quota left, 400 when it is not
    an upload form.
    """
    limits = limits_for(ctx, user)
    length = declared_length(request)
    if length is not None and length > limits.quota_remaining_bytes + FORM_OVERHEAD:
        raise HTTPException(
            413,
            f"the upload is {size_text(length)}, more than the {size_text(limits.quota_remaining_bytes)} "
            "left in your quota; delete old files or upload fewer at once",
        )
    paths = UserPaths(ctx.data_dir, user.id).make()
    for folder in (paths.tmp, paths.uploads):
        sweep_temporary(folder)
    try:
        form = await receive_multipart(request, paths.tmp, limits)
    except UploadRejected as exc:
        raise HTTPException(400, exc.reason) from None
    outcomes = await run_in_threadpool(accept_received, form, paths.uploads, limits)
    try:
        ids = await run_in_threadpool(store_rows, ctx, user.id, outcomes, quota_bytes(ctx, user))
    except QuotaReachedError as exc:
        raise HTTPException(
            413, f"other uploads finished first and filled your quota ({exc}): nothing of this one was kept"
        ) from None
    accepted = sum(isinstance(o, Accepted) for o in outcomes)
    log.info("user %d uploaded %d files (%d outcomes)", user.id, accepted, len(outcomes))
    return [outcome_dict(o, ids) for o in outcomes]


def delete_upload(ctx: WebContext, upload: Upload) -> None:
    paths = UserPaths(ctx.data_dir, upload.owner_id)
    target = (paths.uploads / upload.path).resolve()
    if target.parent == paths.uploads.resolve():  # never outside the user's uploads folder
        remove_quietly(target)
    with ctx.db.session() as session:
        row = session.get(Upload, upload.id)
        if row is not None and row.owner_id == upload.owner_id:
            session.delete(row)


def files_context(ctx: WebContext, user: User) -> dict[str, Any]:
    with ctx.db.session() as session:
        files = [upload_dict(u) for u in uploads_of(session, user.id)]
    used = sum(f["size"] for f in files)
    quota = quota_bytes(ctx, user)
    return {
        "files": files,
        "used": size_text(used),
        "quota": size_text(quota),
        "max_file": size_text(ctx.settings.web.max_file_mb * MB),
    }


# -- pages -------------------------------------------------------------------------------------------


@router.get("/files")
def files_page(request: Request, ctx: Ctx, user: UserDep) -> Response:
    return render(request, "files.html", results=None, error=None, **files_context(ctx, user))


@router.post("/files")
async def upload_page(request: Request, ctx: Ctx, user: UserDep) -> Response:
    """The upload form (htmx sends the CSRF token as a header): the per-file results."""
    try:
        results = await receive_and_store(request, ctx, user)
        error, status = None, 200
    except HTTPException as exc:
        results, error, status = [], str(exc.detail), exc.status_code
    if request.headers.get("hx-request"):
        return render(request, "_upload_results.html", status_code=status, results=results, error=error)
    return render(
        request, "files.html", status_code=status, results=results, error=error, **files_context(ctx, user)
    )


@router.post("/files/{upload_id}/delete")
def delete_page(ctx: Ctx, upload: UploadDep) -> Response:
    delete_upload(ctx, upload)
    return RedirectResponse("/files", status_code=303)


# -- JSON API ----------------------------------------------------------------------------------------


@router.get("/api/files")
def api_files(ctx: Ctx, user: UserDep) -> dict[str, Any]:
    """The caller's uploads, with the quota used."""
    context = files_context(ctx, user)
    return {"files": context["files"], "used": used_bytes(ctx, user.id), "quota": quota_bytes(ctx, user)}


@router.post("/api/files", status_code=200)
async def api_upload(request: Request, ctx: Ctx, user: UserDep) -> JSONResponse:
    """Upload FITS files or archives (``multipart/form-data``, any field name): ``accepted``,
    ``rejected`` (with reasons) and ``skipped`` archive members. 413 when the request is larger
    than the quota left."""
    results = await receive_and_store(request, ctx, user)
    grouped: dict[str, list[dict[str, Any]]] = {"accepted": [], "rejected": [], "skipped": []}
    for item in results:
        grouped[item["status"]].append(item)
    return JSONResponse(grouped)


@router.delete("/api/files/{upload_id}")
def api_delete(ctx: Ctx, upload: UploadDep) -> dict[str, int]:
    delete_upload(ctx, upload)
    return {"deleted": upload.id}
