"""What an upload may be (sizes, header length, archive members) and what becomes of each file.

Everything here is plain data: the receiver, the FITS check and the archive reader share it, and
the web routes turn the outcomes into pages and JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1024 * 1024


@dataclass(frozen=True)
class UploadLimits:
    """The limits of one upload request.

    Parameters
    ----------
    max_file_bytes
        Largest single file (after gunzip for ``.fits.gz``, and per archive member).
    quota_remaining_bytes
        What the user may still store; an archive counts with its unpacked size.
    max_header_bytes
        Longest FITS header of one HDU (header blocks before the ``END`` card).
    max_members
        Most files in one archive.
    """

    max_file_bytes: int
    quota_remaining_bytes: int
    max_header_bytes: int = 1 * MB
    max_members: int = 2000

    def with_quota(self, remaining: int) -> UploadLimits:
        """The same limits with ``remaining`` bytes of quota left (never negative)."""
        return UploadLimits(self.max_file_bytes, max(0, remaining), self.max_header_bytes, self.max_members)


def size_text(n_bytes: float) -> str:
    """A size for a message: ``'512 bytes'``, ``'3.2 MB'``, ``'1.5 GB'``."""
    if n_bytes < 1024:
        return f"{int(n_bytes)} bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        n_bytes /= 1024
        if n_bytes < 1024 or unit == "TB":
            return f"{n_bytes:.1f} {unit}" if n_bytes < 100 else f"{n_bytes:.0f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


class UploadRejected(Exception):  # noqa: N818 - the name the web contract uses
    """A file (or a whole request or archive) is refused.

    ``name`` is what the user sent (a file name, ``'night.zip: raw/a.fits'`` for an archive member);
    ``reason`` is one sentence saying what is wrong and what to do.
    """

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.reason))


@dataclass(frozen=True)
class FitsSummary:
    """What the file list shows of an accepted FITS file.

    ``shape`` is in numpy order (rows, columns[, planes]) of the first image; ``hdu`` its index;
    ``compressed`` tells an fpack (tile-compressed) image.
    """

    kind: str
    shape: tuple[int, ...]
    hdu: int = 0
    object: str | None = None
    filter: str | None = None
    exptime: float | None = None
    date_obs: str | None = None
    n_hdus: int = 1
    compressed: bool = False

    @property
    def dimensions(self) -> str:
        """Width x height (x planes), as astronomers say it: ``'650x500'``."""
        return "x".join(str(n) for n in reversed(self.shape))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shape as a list)."""
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "hdu": self.hdu,
            "object": self.object,
            "filter": self.filter,
            "exptime": self.exptime,
            "date_obs": self.date_obs,
            "n_hdus": self.n_hdus,
            "compressed": self.compressed,
        }


@dataclass(frozen=True)
class Accepted:
    """A file stored under ``path`` (its final, unique, sanitised name ``name``)."""

    name: str
    path: Path
    size: int
    summary: FitsSummary
    source: str = ""  # what the user sent: the file name, or "archive.zip: folder/member.fits"


@dataclass(frozen=True)
class Rejected:
    """A file refused, with a reason a user understands; nothing of it is stored."""

    name: str
    reason: str


@dataclass(frozen=True)
class Skipped:
    """An archive member that is not a FITS file (README.txt, __MACOSX/...): left out, not an error."""

    name: str
    reason: str


Outcome = Accepted | Rejected | Skipped
