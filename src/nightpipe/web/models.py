"""Tables of the web app (``web_*``): accounts, sessions, tokens, uploads, jobs and their events.

Every row a user owns carries ``owner_id``; every query of the web layer filters on it (see
:mod:`nightpipe.web.deps`), so one user never reads, lists or learns of another's rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class User(TimestampMixin, Base):
    """An account: a name, an argon2 password hash, admin and disabled flags, an optional quota."""

    __tablename__ = "web_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    quota_mb: Mapped[float | None] = mapped_column(Float)  # None: the settings' quota


class WebSession(TimestampMixin, Base):
    """A login: the SHA-256 of the cookie's random token (the token itself is never stored)."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(TimestampMixin, Base):
    """A user's token for scripts (``Authorization: Bearer``); only its hash and last four characters kept."""

    __tablename__ = "web_api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    tail: Mapped[str] = mapped_column(String(8))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(TimestampMixin, Base):
    """A failed login, for the rate limit (by name and by address)."""

    __tablename__ = "web_login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)


class Upload(TimestampMixin, Base):
    """One accepted FITS file in a user's uploads folder (``path`` relative to it)."""

    __tablename__ = "web_uploads"
    __table_args__ = (UniqueConstraint("owner_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Profile(TimestampMixin, Base):
    """A saved configuration: an observatory and camera, and any settings the CLI's TOML has."""

    __tablename__ = "web_profiles"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # nested like the TOML: {"observatory": {...}}


class ApiKey(TimestampMixin, Base):
    """A key for an outside service, encrypted at rest (Fernet); only its last four characters shown."""

    __tablename__ = "web_api_keys"
    __table_args__ = (UniqueConstraint("owner_id", "service"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(Text)  # Fernet token
    tail: Mapped[str] = mapped_column(String(8))


class Job(TimestampMixin, Base):
    """A piece of work in the queue: ``kind`` "night" or "frame", claimed by one worker at a time.

    ``status``: queued, running, done (exit code 0), partial (some frames failed), failed,
    cancelled. A running job's worker renews ``heartbeat_at``; a job whose heartbeat is older than
    the settings' ``stale_after_s`` is requeued (``attempts`` left) or failed with the reason.
    """

    __tablename__ = "web_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class JobEvent(Base):
    """One line of a job's live log: a step started, frame n of N, a message, the end."""

    __tablename__ = "web_job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("web_jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))  # step, progress, log, status
    message: Mapped[str] = mapped_column(Text)
    done: Mapped[int | None] = mapped_column(Integer)
    total: Mapped[int | None] = mapped_column(Integer)


class SiteFlag(Base):
    """A switch an admin sets in the admin page (``registration``: "on" or "off")."""

    __tablename__ = "web_site_flags"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
