"""A user's own settings: API tokens for scripts, observatory profiles, outside services' keys."""

from __future__ import annotations

import tomllib
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import delete, select

from nightpipe.web.accounts import new_api_token
from nightpipe.web.database import rows_changed
from nightpipe.web.deps import Ctx, UserDep
from nightpipe.web.job_settings import profile_problem
from nightpipe.web.models import ApiKey, ApiToken, Profile
from nightpipe.web.pages import render
from nightpipe.web.secrets_box import encrypt

router = APIRouter()


def delete_owned(
    ctx: Ctx, model: type[ApiToken | Profile | ApiKey], row_id: int, owner_id: int, what: str
) -> None:
    """Delete the caller's row ``row_id`` of ``model``; 404 when there is none of theirs."""
    with ctx.db.session() as session:
        gone = rows_changed(
            session.execute(delete(model).where(model.id == row_id, model.owner_id == owner_id))
        )
    if not gone:
        raise HTTPException(404, f"no such {what}")


SERVICES = ("astro-colibri", "nova.astrometry.net")


def account_context(ctx: Ctx, user_id: int) -> dict[str, Any]:
    with ctx.db.session() as session:
        tokens = list(session.scalars(select(ApiToken).where(ApiToken.owner_id == user_id)))
        profiles = list(
            session.scalars(select(Profile).where(Profile.owner_id == user_id).order_by(Profile.name))
        )
        keys = list(
            session.scalars(select(ApiKey).where(ApiKey.owner_id == user_id).order_by(ApiKey.service))
        )
    return {"tokens": tokens, "profiles": profiles, "keys": keys, "services": SERVICES}


@router.get("/account")
def account_page(request: Request, ctx: Ctx, user: UserDep) -> Response:
    return render(request, "account.html", new_token=None, error=None, **account_context(ctx, user.id))


@router.post("/account/tokens")
def create_token(request: Request, ctx: Ctx, user: UserDep, label: Annotated[str, Form()] = "") -> Response:
    with ctx.db.session() as session:
        token = new_api_token(session, user, label.strip())
    return render(request, "account.html", new_token=token, error=None, **account_context(ctx, user.id))


@router.post("/account/tokens/{token_id}/delete")
def delete_token(ctx: Ctx, user: UserDep, token_id: int) -> Response:
    delete_owned(ctx, ApiToken, token_id, user.id, "token")
    return RedirectResponse("/account", status_code=303)


def profile_values(site: dict[str, str], camera: dict[str, str], toml_text: str) -> dict[str, Any]:
    """A profile's settings from the form: site and camera fields, then any TOML the CLI takes."""
    try:
        values: dict[str, Any] = tomllib.loads(toml_text) if toml_text.strip() else {}
    except tomllib.TOMLDecodeError as exc:
        raise HTTPException(400, f"the extra settings are not valid TOML: {exc}") from None
    observatory = {k: float(v) if k != "name" else v for k, v in site.items() if v.strip()}
    cam = {k: float(v) for k, v in camera.items() if v.strip()}
    if observatory:
        values["observatory"] = {**values.get("observatory", {}), **observatory}
    if cam:
        values["camera"] = {**values.get("camera", {}), **cam}
    return values


@router.post("/account/profiles")
def save_profile(
    request: Request,
    ctx: Ctx,
    user: UserDep,
    name: Annotated[str, Form()],
    site_name: Annotated[str, Form()] = "",
    latitude: Annotated[str, Form()] = "",
    longitude: Annotated[str, Form()] = "",
    elevation: Annotated[str, Form()] = "",
    gain: Annotated[str, Form()] = "",
    read_noise: Annotated[str, Form()] = "",
    saturation: Annotated[str, Form()] = "",
    extra: Annotated[str, Form()] = "",
) -> Response:
    problem: str | None
    try:
        values = profile_values(
            {"name": site_name, "latitude": latitude, "longitude": longitude, "elevation": elevation},
            {"gain": gain, "read_noise": read_noise, "saturation": saturation},
            extra,
        )
    except ValueError:
        values, problem = {}, "site and camera values must be numbers"
    else:
        problem = profile_problem(values)
    if problem or not name.strip():
        return render(
            request,
            "account.html",
            status_code=400,
            new_token=None,
            error=problem or "a profile needs a name",
            **account_context(ctx, user.id),
        )
    with ctx.db.session() as session:
        row = session.scalar(select(Profile).where(Profile.owner_id == user.id, Profile.name == name.strip()))
        if row is None:
            session.add(Profile(owner_id=user.id, name=name.strip()[:64], settings=values))
        else:
            row.settings = values
    return RedirectResponse("/account", status_code=303)


@router.post("/account/profiles/{profile_id}/delete")
def delete_profile(ctx: Ctx, user: UserDep, profile_id: int) -> Response:
    delete_owned(ctx, Profile, profile_id, user.id, "profile")
    return RedirectResponse("/account", status_code=303)


@router.post("/account/keys")
def save_key(
    ctx: Ctx, user: UserDep, service: Annotated[str, Form()], secret: Annotated[str, Form()]
) -> Response:
    if service not in SERVICES or not secret.strip():
        raise HTTPException(400, f"choose a service ({', '.join(SERVICES)}) and paste its key")
    token = encrypt(ctx.key, secret.strip())
    with ctx.db.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.owner_id == user.id, ApiKey.service == service))
        if row is None:
            session.add(ApiKey(owner_id=user.id, service=service, secret=token, tail=secret.strip()[-4:]))
        else:
            row.secret, row.tail = token, secret.strip()[-4:]
    return RedirectResponse("/account", status_code=303)


@router.post("/account/keys/{key_id}/delete")
def delete_key(ctx: Ctx, user: UserDep, key_id: int) -> Response:
    delete_owned(ctx, ApiKey, key_id, user.id, "key")
    return RedirectResponse("/account", status_code=303)


@router.get("/api/profiles", tags=["account"])
def api_profiles(ctx: Ctx, user: UserDep) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        rows = session.scalars(select(Profile).where(Profile.owner_id == user.id).order_by(Profile.name))
        return [{"id": p.id, "name": p.name, "settings": p.settings} for p in rows]
