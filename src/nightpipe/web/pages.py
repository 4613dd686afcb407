"""Rendering pages: every template gets the user, the CSRF token and the messages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from nightpipe.web.context import WebContext


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` (which extends base.html) with ``user`` and ``csrf_token`` when logged in."""
    ctx: WebContext = request.app.state.ctx
    caller = getattr(request.state, "caller", None)
    base = {
        "user": caller.user if caller is not None else None,
        "csrf_token": caller.csrf if caller is not None and caller.csrf else "",
        "registration": ctx.settings.web.registration,
    }
    return ctx.templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
