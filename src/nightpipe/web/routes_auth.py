"""Registration, login, logout and password change (HTML forms and the JSON API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from nightpipe.web.accounts import AccountError, change_password, create_user, log_in, log_out
from nightpipe.web.deps import COOKIE, Ctx, UserDep, caller_of
from nightpipe.web.flags import registration_open
from nightpipe.web.pages import render
from nightpipe.web.passwords import new_token, same

router = APIRouter()
ANON_COOKIE = "nightpipe_form"


def anon_page(
    request: Request, ctx: Ctx, template: str, status_code: int = 200, **context: object
) -> Response:
    """A page for logged-out visitors whose form carries a double-submit token (login CSRF)."""
    token = request.cookies.get(ANON_COOKIE) or new_token()
    response = render(request, template, status_code=status_code, form_token=token, **context)
    response.set_cookie(
        ANON_COOKIE, token, httponly=True, secure=ctx.settings.web.cookie_secure, samesite="strict", path="/"
    )
    return response


def check_form_token(request: Request, sent: str) -> None:
    kept = request.cookies.get(ANON_COOKIE, "")
    if not kept or not sent or not same(kept, sent):
        raise HTTPException(403, "the form is out of date or forged: reload the page")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(url: str) -> str:
    """Only a path of this site (no ``//host`` or scheme): an open redirect is refused."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def with_session_cookie(response: Response, token: str, ctx: Ctx) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ctx.settings.web.session_hours * 3600),
        httponly=True,
        secure=ctx.settings.web.cookie_secure,
        samesite="lax",
        path="/",
    )
    return response


def start_session(request: Request, ctx: Ctx, name: str, password: str) -> str:
    web = ctx.settings.web
    refused: AccountError | None = None
    with ctx.db.session() as session:  # a refusal is caught inside: the failed attempt is committed
        try:
            login = log_in(
                session,
                name,
                password,
                address=client_address(request),
                limit=web.login_attempts,
                window=timedelta(minutes=web.login_window_min),
                hours=web.session_hours,
            )
        except AccountError as exc:
            refused = exc
    if refused is not None:
        raise refused
    return login.token


@router.get("/login")
def login_page(request: Request, ctx: Ctx, next: str = "/") -> Response:
    return anon_page(request, ctx, "login.html", next=safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    form_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    check_form_token(request, form_token)
    try:
        token = start_session(request, ctx, name.strip(), password)
    except AccountError as exc:
        status = 429 if "too many" in exc.message else 401
        return anon_page(request, ctx, "login.html", status_code=status, next=safe_next(next), error=str(exc))
    return with_session_cookie(RedirectResponse(safe_next(next), status_code=303), token, ctx)


@router.get("/register")
def register_page(request: Request, ctx: Ctx) -> Response:
    with ctx.db.session() as session:
        is_open = registration_open(session, ctx.settings)
    return anon_page(request, ctx, "register.html", error=None, closed=not is_open)


@router.post("/register")
def register(
    request: Request,
    ctx: Ctx,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    password2: Annotated[str, Form()],
    form_token: Annotated[str, Form()] = "",
) -> Response:
    check_form_token(request, form_token)
    with ctx.db.session() as session:
        if not registration_open(session, ctx.settings):
            return anon_page(
                request, ctx, "register.html", status_code=403, error="registration is closed", closed=True
            )
    if password != password2:
        return anon_page(
            request, ctx, "register.html", status_code=400, error="the two passwords differ", closed=False
        )
    try:
        with ctx.db.session() as session:
            create_user(session, name.strip(), password)
        token = start_session(request, ctx, name.strip(), password)
    except AccountError as exc:
        return anon_page(request, ctx, "register.html", status_code=400, error=str(exc), closed=False)
    return with_session_cookie(RedirectResponse("/", status_code=303), token, ctx)


@router.post("/logout")
def logout(request: Request, ctx: Ctx, user: UserDep) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        with ctx.db.session() as session:
            log_out(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/account/password")
def password_page(request: Request, user: UserDep) -> Response:
    return render(request, "password.html", error=None, done=False)


@router.post("/account/password")
def password(
    request: Request, ctx: Ctx, user: UserDep, old: Annotated[str, Form()], new: Annotated[str, Form()]
) -> Response:
    try:
        with ctx.db.session() as session:
            row = session.merge(user)
            change_password(session, row, old, new)
        token = start_session(request, ctx, user.name, new)
    except AccountError as exc:
        return render(request, "password.html", status_code=400, error=str(exc), done=False)
    return with_session_cookie(render(request, "password.html", error=None, done=True), token, ctx)


class Credentials(BaseModel):
    name: str
    password: str


@router.post("/api/login", tags=["accounts"])
def api_login(request: Request, ctx: Ctx, body: Credentials) -> JSONResponse:
    """Log in from a script: sets the session cookie and returns the CSRF token to send back."""
    if caller_of(request, ctx) is not None and request.cookies.get(COOKIE):
        raise HTTPException(400, "already logged in")
    try:
        token = start_session(request, ctx, body.name.strip(), body.password)
    except AccountError as exc:
        raise HTTPException(429 if "too many" in exc.message else 401, str(exc)) from None
    with ctx.db.session() as session:
        from nightpipe.web.accounts import session_of

        found = session_of(session, token)
        csrf = found[0].csrf_token if found else ""
    response = JSONResponse({"csrf_token": csrf})
    with_session_cookie(response, token, ctx)
    return response
