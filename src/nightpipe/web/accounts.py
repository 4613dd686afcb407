"""Accounts, logins and API tokens, on a database session; no HTTP here (see :mod:`deps`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from nightpipe.errors import NightpipeError
from nightpipe.store.base import utcnow
from nightpipe.web.models import ApiToken, LoginAttempt, User, WebSession
from nightpipe.web.passwords import (
    hash_password,
    new_token,
    password_problem,
    token_digest,
    verify_password,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")


class AccountError(NightpipeError):
    """A refused account operation; the message is shown to the user."""


def as_utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were written in UTC."""
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def create_user(session: Session, name: str, password: str, *, admin: bool = False) -> User:
    """A new account; refuses a bad or taken name and a weak password with the reason."""
    if not NAME.match(name):
        raise AccountError(
            f"user name {name!r} is not allowed",
            hint="use 2-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    problem = password_problem(password, name)
    if problem:
        raise AccountError(problem)
    if session.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
        raise AccountError(f"the user name {name!r} is taken", hint="choose another name")
    user = User(name=name, password_hash=hash_password(password), is_admin=admin, disabled=False)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.name) == name.lower()))


def change_password(session: Session, user: User, old: str, new: str) -> None:
    if not verify_password(user.password_hash, old):
        raise AccountError("the current password is wrong")
    problem = password_problem(new, user.name)
    if problem:
        raise AccountError(problem)
    user.password_hash = hash_password(new)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))  # log out everywhere


@dataclass(frozen=True)
class Login:
    """A new login: the cookie's token (shown once) and the session's CSRF token."""

    token: str
    csrf_token: str
    user_id: int


def failed_attempts(session: Session, name: str, address: str, window: timedelta) -> int:
    since = utcnow() - window
    return int(
        session.scalar(
            select(func.count(LoginAttempt.id)).where(
                LoginAttempt.created_at >= since,
                or_(func.lower(LoginAttempt.name) == name.lower(), LoginAttempt.address == address),
            )
        )
        or 0
    )


def log_in(
    session: Session, name: str, password: str, *, address: str, limit: int, window: timedelta, hours: float
) -> Login:
    """Check a name and password and open a session; at most ``limit`` failures per ``window``
    per name and per address (then every attempt is refused without checking the password)."""
    if failed_attempts(session, name, address, window) >= limit:
        raise AccountError(
            "too many failed logins", hint=f"wait {int(window.total_seconds() // 60)} minutes and try again"
        )
    user = find_user(session, name)
    if user is None or not verify_password(user.password_hash, password) or user.disabled:
        session.add(LoginAttempt(name=name[:64], address=address[:64]))
        raise AccountError("wrong user name or password, or the account is disabled")
    token, csrf = new_token(), new_token()
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    session.flush()
    return Login(token=token, csrf_token=csrf, user_id=user.id)


def session_of(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The live login of a cookie token and its (enabled) user, or None."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == token_digest(token)))
    if row is None or as_utc(row.expires_at) < utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


def log_out(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_digest(token)))


def new_api_token(session: Session, user: User, label: str) -> str:
    """A new API token for ``user``; returned once, only its hash is kept."""
    token = "np_" + new_token()
    session.add(
        ApiToken(
            owner_id=user.id, token_hash=token_digest(token), label=label[:64] or "token", tail=token[-4:]
        )
    )
    session.flush()
    return token


def user_of_api_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is None:
        return None
    user = session.get(User, row.owner_id)
    if user is None or user.disabled:
        return None
    row.last_used_at = utcnow()
    return user
