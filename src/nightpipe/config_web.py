"""The ``[web]`` section of the settings: where the web app keeps its data and what it allows.

Kept apart from :mod:`nightpipe.config` (which includes it as ``settings.web``) because only
``nightpipe serve`` and ``nightpipe worker`` read it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class WebConfig(BaseModel):
    """The multi-user web app (``nightpipe serve``) and its job workers (``nightpipe worker``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    data_dir: Path = Field(Path("nightpipe-web"), description="One folder per user: uploads, jobs, products")
    database_url: str | None = Field(
        None, description="Accounts and jobs database (default: sqlite in data_dir; postgresql+psycopg://...)"
    )
    host: str = Field("127.0.0.1", description="Address the web server listens on")
    port: int = Field(8700, ge=0, le=65535, description="Port the web server listens on (0: any free port)")
    base_url: str | None = Field(None, description="The public address, when behind a proxy")
    registration: bool = Field(True, description="Anyone may create an account (an admin can switch it off)")
    local_workers: int = Field(1, ge=0, description="Job workers `serve` starts on this machine (0: none)")
    max_file_mb: float = Field(512.0, gt=0, description="Largest single uploaded file (or archive)")
    quota_mb: float = Field(20000.0, gt=0, description="Uploads each user may keep")
    max_header_kb: float = Field(2880.0, gt=0, description="Largest FITS header accepted in an upload")
    max_archive_members: int = Field(5000, ge=1, description="Most files one ZIP or tar may hold")
    cookie_secure: bool = Field(True, description="Cookies only over HTTPS (localhost counts as secure)")
    session_hours: float = Field(72.0, gt=0, description="How long a login lasts")
    login_attempts: int = Field(5, ge=1, description="Failed logins allowed per name and address per window")
    login_window_min: float = Field(15.0, gt=0, description="The window of the login rate limit")
    heartbeat_s: float = Field(5.0, gt=0, description="How often a worker says its job is alive")
    stale_after_s: float = Field(60.0, gt=0, description="A running job without heartbeat this long is lost")
    max_attempts: int = Field(2, ge=1, description="Runs of a job whose worker was lost, before it fails")
    retention_days: float = Field(30.0, gt=0, description="Jobs and uploads older than this are deleted")

    def database(self) -> str:
        """The accounts-and-jobs database URL (SQLite in ``data_dir`` unless set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'nightpipe-web.sqlite').resolve()}"
