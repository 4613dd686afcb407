"""Accounts of the web app: registration, login, rate limit, CSRF, password change, tokens, admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from nightpipe.web.models import ApiKey, User, WebSession
from nightpipe.web.secrets_box import decrypt
from web_helpers import PASSWORD, client, csrf_of, form_token, log_in, make_app, register


@pytest.fixture
def app(tmp_path: Path):
    return make_app(tmp_path, "web.login_attempts=3")


def test_logged_out_pages_redirect_to_login_and_the_api_answers_401(app) -> None:
    browser = client(app)
    answer = browser.get("/jobs")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/jobs"
    assert browser.get("/api/jobs").status_code == 401
    assert browser.post("/jobs", data={"kind": "night"}).status_code == 401


def test_register_sets_a_secure_httponly_samesite_cookie_and_hashes_with_argon2(app) -> None:
    browser = client(app)
    page = browser.get("/register").text
    answer = browser.post(
        "/register",
        data={"name": "ada", "password": PASSWORD, "password2": PASSWORD, "form_token": form_token(page)},
    )
    assert answer.status_code == 303
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "nightpipe_session" in v
    )
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert "Hello ada" in browser.get("/").text
    with app.state.ctx.db.session() as session:
        user = session.scalar(select(User).where(User.name == "ada"))
        assert user is not None and user.password_hash.startswith("$argon2id$")
        stored = session.scalar(select(WebSession.token_hash).where(WebSession.user_id == user.id))
    token = next(c.value for c in browser.cookies.jar if c.name == "nightpipe_session")
    assert stored != token and len(stored) == 64  # only the hash of the cookie is kept


def test_register_refuses_weak_passwords_taken_names_and_forged_forms(app) -> None:
    browser = client(app)
    register(browser, "ada")
    other = client(app)
    page = other.get("/register").text
    token = form_token(page)
    weak = other.post(
        "/register", data={"name": "bob", "password": "short", "password2": "short", "form_token": token}
    )
    assert weak.status_code == 400 and "at least 8 characters" in weak.text
    taken = other.post(
        "/register", data={"name": "ADA", "password": PASSWORD, "password2": PASSWORD, "form_token": token}
    )
    assert taken.status_code == 400 and "taken" in taken.text
    forged = other.post(
        "/register", data={"name": "eve", "password": PASSWORD, "password2": PASSWORD, "form_token": "forged"}
    )
    assert forged.status_code == 403


def test_login_is_rate_limited_per_name(app) -> None:
    register(client(app), "ada")
    browser = client(app)
    assert [log_in(browser, "ada", "wrong password") for _ in range(3)] == [401, 401, 401]
    assert log_in(browser, "ada", PASSWORD) == 429  # even the right password, until the window passes
    assert log_in(client(app), "ada", PASSWORD) == 429  # from anywhere: the limit is per name too


def test_every_state_change_needs_the_csrf_token(app) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    assert browser.post("/account/tokens", data={"label": "x"}).status_code == 403
    assert browser.post("/account/tokens", data={"label": "x", "csrf_token": "forged"}).status_code == 403
    assert (
        browser.post("/account/tokens", data={"label": "x"}, headers={"X-CSRF-Token": csrf}).status_code
        == 200
    )
    assert browser.post("/account/tokens", data={"label": "x", "csrf_token": csrf}).status_code == 200


def test_api_token_works_without_cookie_or_csrf_and_is_shown_once(app) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    page = browser.post("/account/tokens", data={"label": "script", "csrf_token": csrf}).text
    token = page.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("np_")
    assert token not in browser.get("/account").text  # never shown again
    script = client(app)
    assert script.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).json() == []
    assert script.get("/api/jobs", headers={"Authorization": "Bearer np_forged"}).status_code == 401


def test_password_change_closes_other_logins(app) -> None:
    laptop, phone = client(app), client(app)
    csrf = register(laptop, "ada")
    assert log_in(phone, "ada") == 303
    answer = laptop.post(
        "/account/password", data={"old": PASSWORD, "new": "a much better one", "csrf_token": csrf}
    )
    assert answer.status_code == 200 and "password is changed" in answer.text
    assert phone.get("/").status_code == 303  # logged out
    assert laptop.get("/").status_code == 200  # this browser has a new session
    assert log_in(client(app), "ada", "a much better one") == 303


def test_logout_ends_the_session(app) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert browser.get("/").status_code == 303


def test_api_keys_are_encrypted_at_rest_and_never_shown_in_full(app) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    secret = "colibri-0123456789abcdef"
    answer = browser.post(
        "/account/keys", data={"service": "astro-colibri", "secret": secret, "csrf_token": csrf}
    )
    assert answer.status_code == 303
    page = browser.get("/account").text
    assert secret not in page and "…cdef" in page
    with app.state.ctx.db.session() as session:
        row = session.scalar(select(ApiKey))
        assert row is not None and secret not in row.secret
        assert decrypt(app.state.ctx.key, row.secret) == secret


def test_profiles_are_validated_like_the_cli_settings(app) -> None:
    browser = client(app)
    csrf = register(browser, "ada")
    good = browser.post(
        "/account/profiles",
        data={
            "name": "Cecilia",
            "latitude": "31.68",
            "gain": "1.3",
            "extra": "[photometry]\ndetect_sigma = 4",
            "csrf_token": csrf,
        },
    )
    assert good.status_code == 303
    assert browser.get("/api/profiles").json()[0]["settings"] == {
        "photometry": {"detect_sigma": 4},
        "observatory": {"latitude": 31.68},
        "camera": {"gain": 1.3},
    }
    bad = browser.post("/account/profiles", data={"name": "x", "latitude": "123", "csrf_token": csrf})
    assert bad.status_code == 400 and "latitude" in bad.text
    sneaky = browser.post(
        "/account/profiles",
        data={"name": "y", "extra": '[database]\nurl = "sqlite:////etc/x"', "csrf_token": csrf},
    )
    assert sneaky.status_code == 400 and "may not set [database]" in sneaky.text


def test_admin_page_is_404_for_others_and_switches_registration_and_users(app) -> None:
    from nightpipe.web.accounts import create_user

    with app.state.ctx.db.session() as session:
        create_user(session, "root", PASSWORD, admin=True)
    user = client(app)
    register(user, "ada")
    assert user.get("/admin").status_code == 404
    admin = client(app)
    assert log_in(admin, "root") == 303
    csrf = csrf_of(admin.get("/").text)
    page = admin.get("/admin").text
    assert "ada" in page and 'id="registration-state">open' in page
    assert admin.post("/admin/registration", data={"state": "off", "csrf_token": csrf}).status_code == 303
    assert "Registration is closed" in client(app).get("/register").text
    with app.state.ctx.db.session() as session:
        ada = session.scalar(select(User).where(User.name == "ada"))
        assert ada is not None
        ada_id = ada.id
    assert admin.post(f"/admin/users/{ada_id}", data={"disabled": "1", "csrf_token": csrf}).status_code == 303
    assert user.get("/").status_code == 303  # the disabled user's session stops at once
    assert log_in(client(app), "ada") == 401


@pytest.mark.postgres
def test_the_same_app_runs_on_postgresql_by_settings_alone(tmp_path: Path, postgres_url: str) -> None:
    app = make_app(tmp_path, database_url=postgres_url)
    browser = client(app)
    csrf = register(browser, "ada")
    assert browser.post("/account/tokens", data={"label": "pg", "csrf_token": csrf}).status_code == 200
    assert browser.get("/api/jobs").json() == []
    assert app.state.ctx.db.engine.dialect.name == "postgresql"
    app.state.ctx.db.dispose()
