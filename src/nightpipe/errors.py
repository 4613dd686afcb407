"""Typed exceptions of nightpipe.

Every message names the file (or keyword, or setting) concerned and says what to do
next. Library code raises these; only the CLI and web layers turn them into exit codes
and pages.
"""

from __future__ import annotations

from pathlib import Path

from nightpipe.exit_codes import ExitCode


class NightpipeError(Exception):
    """Base class of all nightpipe errors.

    Parameters
    ----------
    message
        What went wrong, in one sentence.
    path
        The file concerned, when there is one; it is put first in the message.
    hint
        What the user should do about it.
    """

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, path: Path | str | None = None, hint: str | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path is not None else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text

    def __reduce__(self) -> tuple[object, ...]:  # picklable across dask workers
        return (_rebuild, (type(self), self.message, self.path, self.hint))


def _rebuild(cls: type[NightpipeError], message: str, path: Path | None, hint: str | None) -> NightpipeError:
    return cls(message, path=path, hint=hint)


class ConfigError(NightpipeError):
    """A setting is unknown, has the wrong type, or the configuration file cannot be read."""

    exit_code = ExitCode.USAGE


class FitsReadError(NightpipeError):
    """A file is not FITS, is truncated or corrupt, or lacks the data we need."""


class HeaderError(NightpipeError):
    """A header keyword is missing or has a value that cannot be understood."""


class CalibrationError(NightpipeError):
    """Masters cannot be built or applied (no match, wrong shape, zero flat...)."""


class AstrometryError(NightpipeError):
    """A frame cannot be plate-solved or its WCS fails the checks."""


class PhotometryError(NightpipeError):
    """Sources cannot be detected or measured."""


class CatalogError(NightpipeError):
    """A reference catalogue cannot be queried, read or is not cached while offline."""


class TimeseriesError(NightpipeError):
    """A light curve cannot be built or fitted."""


class StoreError(NightpipeError):
    """The database cannot be opened, migrated or written."""


class ProductWriteError(NightpipeError, OSError):
    """A product cannot be written (disk full, read-only folder...); what was there is kept.

    Also an :class:`OSError`, as the failure it replaces was."""


def write_problem(exc: OSError) -> tuple[str, str] | None:
    """What a failed write means and what to do about it, ``(reason, hint)``; ``None`` for an
    error that is not about writing (a file to read that is missing, say)."""
    import errno

    text = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "space on disk" in text:
        return f"the disk is full ({text})", "free space on that disk and rerun: finished products are kept"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"the folder is not writable ({text})",
            "make it writable or set paths.output to another folder",
        )
    if exc.errno == errno.EIO:
        return f"the disk failed ({text})", "check the disk, then rerun: finished products are kept"
    return None


class PipelineError(NightpipeError):
    """A pipeline run cannot proceed (lock held, missing inputs...)."""


class RunBusyError(PipelineError):
    """Another nightpipe run holds the lock of the output folder or of the database: nothing was
    done, and a scheduler (cron, systemd timer) may simply try again at its next turn."""

    exit_code = ExitCode.BUSY


class MissingInputError(PipelineError):
    """A command has nothing to do because its input is missing (the message says which command
    makes it): photometry before any frame is calibrated, a run on a folder without FITS files."""

    exit_code = ExitCode.USAGE
