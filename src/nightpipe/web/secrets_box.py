"""Outside services' API keys, encrypted at rest with Fernet under a key file of the data folder."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from nightpipe.errors import NightpipeError

KEY_FILE = "secret.key"


def load_key(data_dir: Path) -> bytes:
    """The data folder's Fernet key, created (readable by its owner only) on first use."""
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    os.replace(tmp, path)
    return key


def encrypt(key: bytes, secret: str) -> str:
    return Fernet(key).encrypt(secret.encode()).decode()


def decrypt(key: bytes, token: str) -> str:
    try:
        return Fernet(key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise NightpipeError(
            "a stored API key cannot be decrypted",
            hint="the data folder's secret.key changed: enter the key again",
        ) from None


def masked(secret: str) -> str:
    """What is shown of a secret: its last four characters."""
    return "…" + secret[-4:] if len(secret) > 4 else "…"
