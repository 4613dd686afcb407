"""nightpipe: from a night of raw observatory frames to science products."""

from functools import cache
from typing import Any

__all__ = ["__version__"]


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nightpipe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed package's metadata on first use (importlib.metadata
    costs a tenth of the command line's start-up, and ``nightpipe --help`` does not need it)."""
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'nightpipe' has no attribute {name!r}")
