"""The authorisation matrix: every route of the app, tried on user A's things as user B, as a
logged-out visitor and with a forged CSRF token. Nothing is reached, nothing leaks, nothing changes.

Routes are read from the app itself, so a route added later is tried too; a route whose path
parameter this test cannot fill fails the test until it is taught here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from nightpipe.web.accounts import create_user, new_api_token
from nightpipe.web.jobqueue import enqueue
from nightpipe.web.models import ApiKey, ApiToken, Job, Profile, Upload, User
from nightpipe.web.paths import UserPaths
from nightpipe.web.secrets_box import encrypt
from web_helpers import PASSWORD, client, csrf_of, log_in, make_app

PUBLIC = {"/login", "/register", "/api/login", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect"}
MARK = "zq-private-of-ada"  # in every name of A's things: must never appear in B's answers


def api_routes(items, prefix: str = "") -> list[APIRoute | tuple[str, APIRoute]]:
    """Every APIRoute, through included routers (FastAPI >= 0.16x wraps them) with their prefix."""
    found: list = []
    for route in items:
        if isinstance(route, APIRoute):
            found.append((prefix, route))
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes, prefix + route.include_context.prefix)
    return found


def routes(app) -> list[tuple[str, str]]:
    found = []
    for prefix, route in api_routes(app.routes):
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, prefix + route.path))
    assert found, "no routes found in the app"
    return found


@pytest.fixture
def world(tmp_path: Path, shared_data: Path):
    app = make_app(tmp_path)
    ctx = app.state.ctx
    fits = next(
        iter(
            sorted((shared_data / "hatp32-microobservatory").glob("*.FITS"))
            or sorted((shared_data / "hatp32-microobservatory").rglob("*.fits"))
        )
    )
    with ctx.db.session() as session:
        ada = create_user(session, "ada", PASSWORD)
        bob = create_user(session, "bob", PASSWORD)
        create_user(session, "root", PASSWORD, admin=True)
        paths = UserPaths(ctx.data_dir, ada.id).make()
        shutil.copy(fits, paths.uploads / f"{MARK}.fits")
        upload = Upload(
            owner_id=ada.id,
            name=f"{MARK}.fits",
            path=f"{MARK}.fits",
            size=fits.stat().st_size,
            summary={"kind": "light"},
        )
        session.add(upload)
        session.flush()
        job = enqueue(
            session, ada.id, "night", f"job {MARK}", {"upload_ids": [upload.id], "profile_id": None}
        )
        profile = Profile(owner_id=ada.id, name=f"profile {MARK}", settings={})
        key = ApiKey(
            owner_id=ada.id, service="astro-colibri", secret=encrypt(ctx.key, "k-" + MARK), tail="1234"
        )
        session.add_all([profile, key])
        new_api_token(session, ada, f"token {MARK}")
        session.flush()
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.owner_id == ada.id))
        ids = {
            "job_id": job.id,
            "upload_id": upload.id,
            "profile_id": profile.id,
            "key_id": key.id,
            "token_id": token_id,
            "user_id": ada.id,
            "frame_id": 1,
        }
        bob_id = bob.id
    return app, ids, bob_id


def fill(path: str, ids: dict[str, int]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in ids, f"the authorisation test does not know the path parameter {{{name}}} of {path}"
        return str(ids[name])

    return re.sub(r"\{([^}]+)\}", one, path)


def request(browser, method: str, url: str, csrf: str | None):
    headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
    if method == "GET":
        return browser.get(url, headers=headers)
    return browser.request(method, url, headers=headers, data={"csrf_token": csrf or ""})


def snapshot(app) -> dict[str, object]:
    """User A's things and every account's state."""
    with app.state.ctx.db.session() as session:
        ada = session.scalar(select(User.id).where(User.name == "ada"))
        job = session.scalar(select(Job).where(Job.title.contains(MARK)))

        def count(model) -> int:
            return int(session.scalar(select(func.count(model.id)).where(model.owner_id == ada)) or 0)

        return {
            "job": (job.status, job.cancel_requested) if job else None,
            "uploads": count(Upload),
            "profiles": count(Profile),
            "keys": count(ApiKey),
            "tokens": count(ApiToken),
            "jobs": count(Job),
            "users": [(u.name, u.disabled, u.quota_mb, u.is_admin) for u in session.scalars(select(User))],
        }


def test_user_b_reaches_nothing_of_user_a(world) -> None:
    app, ids, _ = world
    before = snapshot(app)
    bob = client(app)
    assert log_in(bob, "bob") == 303
    csrf = csrf_of(bob.get("/").text)
    tried = 0
    for method, path in routes(app):
        if path in PUBLIC or path in ("/logout", "/account/password"):
            continue
        answer = request(bob, method, fill(path, ids), csrf)
        tried += 1
        assert MARK not in answer.text, f"{method} {path} shows user A's things to user B"
        if "{" in path:
            assert answer.status_code == 404, f"{method} {path} as B: {answer.status_code}, want 404"
        if path.startswith("/admin"):
            assert answer.status_code == 404, f"{method} {path} as a non-admin: {answer.status_code}"
    assert tried >= 20
    assert snapshot(app) == before, "user B changed something of user A's"


def test_a_logged_out_visitor_gets_nothing(world) -> None:
    app, ids, _ = world
    before = snapshot(app)
    visitor = client(app)
    for method, path in routes(app):
        if path in PUBLIC:
            continue
        answer = request(visitor, method, fill(path, ids), None)
        assert MARK not in answer.text
        if method == "GET" and not path.startswith("/api/"):
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
        else:
            assert answer.status_code == 401, f"{method} {path} logged out: {answer.status_code}"
    assert snapshot(app) == before


def test_a_forged_csrf_token_changes_nothing(world) -> None:
    app, ids, _ = world
    ada = client(app)
    assert log_in(ada, "ada") == 303
    before = snapshot(app)
    for method, path in routes(app):
        if method == "GET" or path in PUBLIC:
            continue
        for forged in ("", "forged-token"):
            answer = request(ada, method, fill(path, ids), forged)
            assert answer.status_code == 403, (
                f"{method} {path} with a forged CSRF token: {answer.status_code}"
            )
    assert snapshot(app) == before
    assert ada.get("/").status_code == 200  # and A's session still works


def test_the_owner_does_reach_their_things(world) -> None:
    """The matrix above would pass on an app that refuses everyone: A must get her own things."""
    app, ids, _ = world
    ada = client(app)
    assert log_in(ada, "ada") == 303
    assert MARK in ada.get(f"/jobs/{ids['job_id']}").text
    assert ada.get(f"/api/jobs/{ids['job_id']}").json()["title"] == f"job {MARK}"
    assert MARK in ada.get("/account").text
