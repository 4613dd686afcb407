"""Helpers of the web app's tests: an app on a temporary data folder, logged-in clients."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from nightpipe.config import Settings, load_settings
from nightpipe.web.app import create_app

PASSWORD = "correct horse battery"


def web_overrides(tmp_path: Path, *overrides: str, database_url: str | None = None) -> list[str]:
    """The ``--set`` overrides of :func:`web_settings` (for a worker process of the same settings)."""
    sets = [
        f"web.data_dir={tmp_path / 'web'}",
        f"paths.output={tmp_path / 'out'}",
        f"paths.cache={tmp_path / 'cache'}",
        "catalog.offline=true",
        *overrides,
    ]
    if database_url:
        sets.append(f"web.database_url={database_url}")
    return sets


def web_settings(tmp_path: Path, *overrides: str, database_url: str | None = None) -> Settings:
    """Settings whose web data folder, engine output and cache are under ``tmp_path``."""
    return load_settings(
        None, overrides=web_overrides(tmp_path, *overrides, database_url=database_url), environ={}
    )


def make_app(tmp_path: Path, *overrides: str, database_url: str | None = None) -> FastAPI:
    return create_app(web_settings(tmp_path, *overrides, database_url=database_url))


def client(app: FastAPI) -> TestClient:
    """A browser-like client: HTTPS (the session cookie is Secure), no redirects followed."""
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def form_token(page: str, field: str = "form_token") -> str:
    found = re.search(rf'name="{field}" value="([^"]+)"', page)
    assert found, f"no {field} in the page"
    return found.group(1)


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page)
    assert found and found.group(1), "no CSRF token in the page"
    return found.group(1)


def register(browser: TestClient, name: str, password: str = PASSWORD) -> str:
    """Register ``name`` through the form; returns the session's CSRF token."""
    page = browser.get("/register").text
    answer = browser.post(
        "/register",
        data={"name": name, "password": password, "password2": password, "form_token": form_token(page)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(browser.get("/").text)


def log_in(browser: TestClient, name: str, password: str = PASSWORD) -> int:
    page = browser.get("/login").text
    answer = browser.post(
        "/login", data={"name": name, "password": password, "form_token": form_token(page), "next": "/"}
    )
    return answer.status_code
