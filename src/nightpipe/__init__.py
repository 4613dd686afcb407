"""nightpipe: from a night of raw observatory frames to science products.

The Python API (``docs/api.md``) is here, loaded on first use so that importing nightpipe
(and ``nightpipe --help``) stays fast::

    import nightpipe

    settings = nightpipe.load_config("nightpipe.toml")
    nightpipe.run_night(["raw/2026-12-06"], settings)
    frame = nightpipe.analyse_frame("raw/2026-12-06/M42_0001.fits", settings)
    with nightpipe.open_archive(settings.database.url, settings) as archive:
        archive.light_curve("HAT-P-32")
"""

from functools import cache
from typing import Any

__all__ = [
    "Archive",
    "FrameAnalysis",
    "__version__",
    "analyse_frame",
    "load_config",
    "open_archive",
    "run_night",
]
API = frozenset(__all__) - {"__version__"}


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nightpipe")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed package's metadata on first use (importlib.metadata
    costs a tenth of the command line's start-up, and ``nightpipe --help`` does not need it), and
    the API of :mod:`nightpipe.api`."""
    if name == "__version__":
        return _version()
    if name in API:
        from nightpipe import api

        return getattr(api, name)
    raise AttributeError(f"module 'nightpipe' has no attribute {name!r}")
