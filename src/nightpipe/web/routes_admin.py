"""The admin page: users (disable, quota), registration on or off. Non-admins get 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from nightpipe.web.deps import AdminDep, Ctx
from nightpipe.web.flags import registration_open, set_registration
from nightpipe.web.models import Job, Upload, User
from nightpipe.web.pages import render

router = APIRouter()


@router.get("/admin")
def admin_page(request: Request, ctx: Ctx, admin: AdminDep) -> Response:
    with ctx.db.session() as session:
        used = dict(
            session.execute(select(Upload.owner_id, func.sum(Upload.size)).group_by(Upload.owner_id)).all()
        )
        jobs = dict(session.execute(select(Job.owner_id, func.count(Job.id)).group_by(Job.owner_id)).all())
        users = [
            {
                "id": u.id,
                "name": u.name,
                "is_admin": u.is_admin,
                "disabled": u.disabled,
                "quota_mb": u.quota_mb or ctx.settings.web.quota_mb,
                "used_mb": (used.get(u.id) or 0) / 1e6,
                "jobs": jobs.get(u.id, 0),
                "created_at": u.created_at,
            }
            for u in session.scalars(select(User).order_by(User.name))
        ]
        is_open = registration_open(session, ctx.settings)
    return render(request, "admin.html", users=users, registration_open=is_open)


@router.post("/admin/users/{user_id}")
def update_user(
    ctx: Ctx,
    admin: AdminDep,
    user_id: int,
    disabled: Annotated[str, Form()] = "",
    quota_mb: Annotated[str, Form()] = "",
) -> Response:
    with ctx.db.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(404, "no such user")
        if user.id == admin.id and disabled:
            raise HTTPException(400, "an admin cannot disable their own account")
        user.disabled = bool(disabled)
        if quota_mb.strip():
            try:
                user.quota_mb = max(0.0, float(quota_mb))
            except ValueError:
                raise HTTPException(400, "the quota is a number of megabytes") from None
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/registration")
def switch_registration(ctx: Ctx, admin: AdminDep, state: Annotated[str, Form()]) -> Response:
    with ctx.db.session() as session:
        set_registration(session, state == "on")
    return RedirectResponse("/admin", status_code=303)
