"""A web job's engine settings: the server's, then the profile's, then the job's own folders and keys."""

from __future__ import annotations

from pathlib import Path

from nightpipe.web.job_settings import job_settings, profile_problem
from nightpipe.web.paths import UserPaths
from web_helpers import web_settings


def test_a_job_writes_only_into_its_folder_whatever_the_profile_says(tmp_path: Path) -> None:
    server = web_settings(tmp_path, "photometry.detect_sigma=3")
    paths = UserPaths(tmp_path / "web", 7)
    profile = {
        "photometry": {"detect_sigma": 5},
        "observatory": {"latitude": 40.0},
        "paths": {"output": "/etc"},
        "database": {"url": "sqlite:////etc/x.sqlite"},
    }
    settings = job_settings(server, profile, paths, 3, {"astro-colibri": "uid-123"})
    assert settings.photometry.detect_sigma == 5  # the profile wins over the server
    assert settings.observatory.latitude == 40.0
    assert settings.paths.output == paths.job_output(3)
    assert settings.paths.masters == paths.job_output(3) / "masters"
    assert settings.database.url == paths.job_db_url(3) and "/users/7/jobs/3/" in settings.database.url
    assert settings.identify.colibri_key == "uid-123"
    assert settings.catalog.offline is True  # the server's setting stays


def test_profile_problems_name_the_key() -> None:
    assert profile_problem({"photometry": {"detect_sigma": 4}}) is None
    assert "may not set [paths]" in (profile_problem({"paths": {"output": "/"}}) or "")
    problem = profile_problem({"photometry": {"no_such_key": 1}}) or ""
    assert "no_such_key" in problem
