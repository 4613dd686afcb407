"""Passwords (argon2id) and random tokens (sessions, API tokens, CSRF); only hashes are stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 8


def hasher() -> PasswordHasher:
    """argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).

    The library's default (RFC 9106's low-memory profile) takes 64 MiB per hash: twenty users
    logging in at once then cost the web process over a gigabyte (``benchmarks/bench_web.py``).
    Hashes keep their parameters, so older ones still verify.
    """
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash (never raises on a bad one)."""
    try:
        return hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, name: str = "") -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if name and password.lower() == name.lower():
        return "the password must not be the user name"
    return None


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """The SHA-256 of a token, as stored (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
