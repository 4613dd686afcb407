"""nightpipe: from a night of raw observatory frames to science products."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nightpipe")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
