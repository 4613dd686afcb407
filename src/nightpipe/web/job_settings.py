"""The engine's settings for one job: the server's, then the chosen profile's, then the job's folders."""

from __future__ import annotations

from typing import Any

from nightpipe.config import Settings, validate_settings
from nightpipe.web.paths import UserPaths

# what a profile may not set: the job decides where its products and database go
PROTECTED = ("paths", "database", "web", "parallel")


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, section by section."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(out.get(section), dict):
            out[section] = {**out[section], **values}
        else:
            out[section] = values
    return out


def profile_problem(values: dict[str, Any]) -> str | None:
    """Why a profile's settings are refused (a protected section, or invalid settings), or None."""
    bad = [s for s in values if s in PROTECTED]
    if bad:
        return f"a profile may not set [{', '.join(bad)}]: the web app chooses where each job writes"
    from nightpipe.errors import ConfigError

    try:
        validate_settings(values, source="profile")
    except ConfigError as exc:
        return str(exc)
    return None


def job_settings(
    server: Settings,
    profile: dict[str, Any] | None,
    paths: UserPaths,
    job_id: int,
    keys: dict[str, str] | None = None,
) -> Settings:
    """Settings for the engine: products into the job's folder, one SQLite database per job,
    the user's outside-service ``keys`` (decrypted: "astro-colibri" becomes ``identify.colibri_key``)."""
    data = merged(server.to_dict(), {k: v for k, v in (profile or {}).items() if k not in PROTECTED})
    if keys and keys.get("astro-colibri"):
        data["identify"] = {**data.get("identify", {}), "colibri_key": keys["astro-colibri"]}
    output = paths.job_output(job_id)
    data["paths"] = {**data.get("paths", {}), "output": str(output), "masters": str(output / "masters")}
    data["database"] = {"url": paths.job_db_url(job_id)}
    return validate_settings(data, source=f"job {job_id}")
