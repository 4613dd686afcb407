"""Where numba keeps the compiled kernels between runs (issue 22: the first night on a fresh install).

Every kernel is compiled with ``cache=True``. Left to itself numba writes its cache into
``NUMBA_CACHE_DIR`` when that is set, else into ``__pycache__`` beside each module when that
folder is writable, else into its user-wide cache (``$XDG_CACHE_HOME/numba`` or
``~/.cache/numba``); ``PYTHONDONTWRITEBYTECODE`` does not change that. A read-only install thus
caches in ``~/.cache/numba``, an editable one inside the source tree, and ``nightpipe doctor``
could not say which. The command line sets ``NUMBA_CACHE_DIR`` to one user cache folder when the
user has not set it (before numba is imported), so that every install caches in the same,
writable, known place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"


def default_cache_dir(environ: MutableMapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/nightpipe/numba``, or ``~/.cache/nightpipe/numba`` without XDG_CACHE_HOME.

    >>> str(default_cache_dir({"XDG_CACHE_HOME": "/var/cache/me"}))
    '/var/cache/me/nightpipe/numba'
    """
    root = environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(root) / "nightpipe" / "numba"


def cache_dir(environ: MutableMapping[str, str]) -> Path | None:
    """The folder numba is told to cache in (``NUMBA_CACHE_DIR``), or None when it is not set.

    >>> cache_dir({"NUMBA_CACHE_DIR": "/tmp/k"}), cache_dir({})
    (PosixPath('/tmp/k'), None)
    """
    folder = environ.get(ENV)
    return Path(folder).expanduser() if folder else None


def use_user_cache(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Point numba at :func:`default_cache_dir` unless the user set ``NUMBA_CACHE_DIR``; returns the
    folder numba caches in, or None when numba was already imported without a cache folder (too
    late: numba reads its configuration once, at import)."""
    env = os.environ if environ is None else environ
    chosen = cache_dir(env)
    if chosen is not None:
        return chosen
    if "numba" in sys.modules:
        return None
    folder = default_cache_dir(env)
    env[ENV] = str(folder)
    return folder
