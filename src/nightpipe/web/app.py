"""The web app: ``create_app(settings)`` builds FastAPI with its routers, templates and static files.

Pages are rendered on the server (Jinja2) and enhanced with htmx; the JSON API under ``/api``
uses the same routes' logic and is documented at ``/docs``. JavaScript libraries come from npm
(``make web-assets``) and are served from ``/static/vendor``: a page never asks a CDN.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from nightpipe import __version__
from nightpipe.config import Settings
from nightpipe.store.db import Database
from nightpipe.web.context import STATIC, TEMPLATES, WebContext
from nightpipe.web.database import open_web_database
from nightpipe.web.deps import LoginRequiredError, wants_json
from nightpipe.web.pages import render
from nightpipe.web.secrets_box import load_key

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: https:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' https:; frame-ancestors 'self'; "
        "worker-src 'self' blob:"
    ),
}


def routers() -> list[object]:
    from nightpipe.web import (
        routes_account,
        routes_admin,
        routes_auth,
        routes_files,
        routes_jobs,
        routes_results,
    )

    return [
        routes_auth.router,
        routes_jobs.router,
        routes_results.router,
        routes_files.router,
        routes_account.router,
        routes_admin.router,
    ]


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """The app on ``settings.web`` (its database opened and migrated unless ``db`` is given)."""
    db = db or open_web_database(settings)
    if not (STATIC / "vendor" / "htmx.min.js").is_file():
        log.warning("the JavaScript is missing from %s: run `make web-assets` (npm)", STATIC / "vendor")
    app = FastAPI(
        title="nightpipe",
        version=__version__,
        docs_url="/docs",
        redoc_url=None,
        description="Upload a night's frames, run the pipeline, look at the results. "
        "Scripts authenticate with `Authorization: Bearer <API token>` (Account page).",
    )
    app.state.ctx = WebContext(
        settings=settings,
        db=db,
        templates=Jinja2Templates(directory=TEMPLATES),
        key=load_key(settings.web.data_dir),
    )
    for router in routers():
        app.include_router(router)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/api/", "/jobs/", "/files")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequiredError)
    async def to_login(request: Request, exc: LoginRequiredError) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if wants_json(request) or request.headers.get("hx-request"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render(
            request, "error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        if wants_json(request):
            return JSONResponse({"detail": fields or "bad request"}, status_code=422)
        return render(request, "error.html", status_code=422, status=422, detail=fields or "bad request")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
