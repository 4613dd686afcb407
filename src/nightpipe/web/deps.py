"""FastAPI dependencies: who is asking (cookie session or API token), CSRF, owned rows (else 404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select

from nightpipe.web.accounts import session_of, user_of_api_token
from nightpipe.web.context import WebContext
from nightpipe.web.models import Job, Upload, User
from nightpipe.web.passwords import same

COOKIE = "nightpipe_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class LoginRequiredError(Exception):
    """A logged-out browser asked for a page: it is sent to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def get_ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(get_ctx)]


@dataclass(frozen=True)
class Caller:
    """The user behind a request and how they proved it (``csrf`` is None for API tokens)."""

    user: User
    csrf: str | None


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def caller_of(request: Request, ctx: WebContext) -> Caller | None:
    auth = request.headers.get("authorization", "")
    with ctx.db.session() as session:
        if auth.lower().startswith("bearer "):
            user = user_of_api_token(session, auth[7:].strip())
            return Caller(user, None) if user is not None else None
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        found = session_of(session, token)
        return Caller(found[1], found[0].csrf_token) if found is not None else None


async def current_caller(request: Request, ctx: Ctx) -> Caller:
    """The logged-in caller; a logged-out browser goes to /login, the API answers 401.

    Every state-changing request made with a cookie must carry the session's CSRF token, in the
    ``X-CSRF-Token`` header or (for url-encoded forms) the ``csrf_token`` field; multipart
    uploads send it in the header.
    """
    caller = caller_of(request, ctx)
    if caller is None:
        if wants_json(request) or request.method not in SAFE_METHODS:
            raise HTTPException(401, "log in first (or send an API token: Authorization: Bearer ...)")
        raise LoginRequiredError(str(request.url.path))
    if caller.csrf is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not sent and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            sent = str((await request.form()).get("csrf_token", ""))
        if not sent or not same(sent, caller.csrf):
            raise HTTPException(
                403, "the form is out of date or forged (CSRF token missing or wrong): reload the page"
            )
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def current_user(caller: CallerDep) -> User:
    return caller.user


UserDep = Annotated[User, Depends(current_user)]


def admin_user(user: UserDep) -> User:
    if not user.is_admin:
        raise HTTPException(404, "not found")
    return user


AdminDep = Annotated[User, Depends(admin_user)]


def owned_job(job_id: int, user: UserDep, ctx: Ctx) -> Job:
    """The caller's job ``job_id``; 404 for a job of someone else's, exactly as for no job."""
    with ctx.db.session() as session:
        job = session.scalar(select(Job).where(Job.id == job_id, Job.owner_id == user.id))
    if job is None:
        raise HTTPException(404, "no such job")
    return job


def owned_upload(upload_id: int, user: UserDep, ctx: Ctx) -> Upload:
    """The caller's upload ``upload_id``; 404 otherwise."""
    with ctx.db.session() as session:
        upload = session.scalar(select(Upload).where(Upload.id == upload_id, Upload.owner_id == user.id))
    if upload is None:
        raise HTTPException(404, "no such file")
    return upload


JobDep = Annotated[Job, Depends(owned_job)]
UploadDep = Annotated[Upload, Depends(owned_upload)]
