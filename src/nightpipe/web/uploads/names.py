"""Safe file names for uploads, and placing a finished file under a unique name atomically.

A name sent by a browser or found in an archive is only a hint: :func:`safe_name` keeps its last
path component, in NFKC unicode, without control or shell-unfriendly characters, leading dots or
excess length, and keeps its FITS extension. :func:`place_file` renames a finished temporary file
to a name no other file in the folder has, without ever replacing one (two uploads of
``frame.fits`` become ``frame.fits`` and ``frame-2.fits``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
from pathlib import Path

log = logging.getLogger(__name__)

#: The name endings of the files an upload may hold, longest first (matched case-insensitively).
FITS_EXTENSIONS = (
    ".fits.gz", ".fit.gz", ".fts.gz", ".fits.bz2", ".fit.bz2", ".fts.bz2", ".fits.fz",
    ".fits", ".fit", ".fts", ".fz", ".mt",
)  # fmt: skip
#: Archive name endings (matched case-insensitively) and the archive kind they announce.
ARCHIVE_EXTENSIONS = {
    ".zip": "zip", ".tar": "tar", ".tar.gz": "tar", ".tgz": "tar", ".tar.bz2": "tar", ".tbz2": "tar",
    ".tbz": "tar", ".tar.xz": "tar", ".txz": "tar",
}  # fmt: skip
MAX_NAME_BYTES = 160  # well under the 255 bytes of a file name on every filesystem
FALLBACK_STEM = "upload"
TEMP_PREFIX = ".upload-"
_UNSAFE = re.compile(r"[^\w\-. ()+,@=#%\[\]{}~]")
_SPACES = re.compile(r"\s+")
_MANY_UNDERSCORES = re.compile(r"_{2,}")


def split_extension(name: str) -> tuple[str, str]:
    """``(stem, extension)`` where the extension is a FITS or archive ending if the name has one
    (``'a.fits.gz'`` -> ``('a', '.fits.gz')``), else the last suffix (``'notes.txt'`` -> ``('notes',
    '.txt')``), else ``''``."""
    lower = name.lower()
    for ext in (*FITS_EXTENSIONS, *sorted(ARCHIVE_EXTENSIONS, key=len, reverse=True)):
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], name[-len(ext) :]
    dot = name.rfind(".")
    if dot > 0 and len(name) - dot <= 10:
        return name[:dot], name[dot:]
    return name, ""


def is_fits_name(name: str) -> bool:
    """True when ``name`` ends like a FITS file we accept (``.fits .fit .fts .fz``, gzip or bzip2)."""
    lower = name.lower()
    return any(lower.endswith(ext) for ext in FITS_EXTENSIONS)


def archive_kind(name: str) -> str | None:
    """``'zip'`` or ``'tar'`` when ``name`` ends like an archive we unpack, else ``None``."""
    lower = name.lower()
    for ext in sorted(ARCHIVE_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return ARCHIVE_EXTENSIONS[ext]
    return None


def last_component(name: str) -> str:
    """The last part of a path written with ``/`` or ``\\`` (``'C:\\\\night\\\\a.fits'`` -> ``'a.fits'``)."""
    parts = [p for p in re.split(r"[/\\]", name) if p]
    return parts[-1] if parts else ""


def _clean(text: str) -> str:
    text = "".join(c for c in text if not unicodedata.category(c).startswith("C"))  # control, format...
    text = _SPACES.sub(" ", text)
    text = _UNSAFE.sub("_", text)
    return _MANY_UNDERSCORES.sub("_", text)


def _cap(stem: str, limit: int) -> str:
    encoded = stem.encode("utf-8")
    if len(encoded) <= limit:
        return stem
    return encoded[:limit].decode("utf-8", errors="ignore").rstrip(" ._-")


def safe_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name safe to create in an uploads folder; never empty.

    Only the last path component is kept; unicode is NFKC-normalised (a fullwidth ``／`` is a
    ``/`` then, and cut like one); control and format characters are dropped; characters other
    than letters, digits and ``-_. ()+,@=#%[]{}~`` become ``_``; leading dots and spaces, and
    trailing dots and spaces, are removed; the stem is cut so that the whole name stays within
    ``max_bytes`` of UTF-8, keeping the extension (``.fits``, ``.fits.gz``...).

    Examples
    --------
    >>> safe_name("../../etc/passwd"), safe_name("C:\\\\night\\\\M 51 (R).FITS"), safe_name("...fits")
    ('passwd', 'M 51 (R).FITS', 'upload.fits')
    >>> safe_name(".hidden.fit"), safe_name("a\\x00b|c.fits"), safe_name("")
    ('hidden.fit', 'ab_c.fits', 'upload')
    """
    text = unicodedata.normalize("NFKC", str(name))
    text = _clean(last_component(text)).strip(" ")
    bare = text.lstrip(". ").rstrip(". ")
    stem, ext = split_extension(bare)
    if bare != text and "." + bare.lower() in FITS_EXTENSIONS:
        stem, ext = "", "." + bare  # "...fits": an extension without a stem
    ext = _cap(ext, 16)
    stem = _cap(stem.strip(" "), max_bytes - len(ext.encode("utf-8"))).rstrip(" .")
    if not stem:
        stem = FALLBACK_STEM
    return stem + ext


def _candidates(name: str) -> list[str]:
    stem, ext = split_extension(name)
    return [name] + [f"{stem}-{n}{ext}" for n in range(2, 10_000)]


def unique_name(folder: Path, name: str) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... : the first that no file in ``folder`` has.

    Only a hint when several writers share the folder: :func:`place_file` claims the name atomically.
    """
    for candidate in _candidates(name):
        if not os.path.lexists(folder / candidate):
            return candidate
    raise FileExistsError(errno.EEXIST, f"no free name like {name} in {folder}")


def temp_file(folder: Path, suffix: str = ".part") -> tuple[int, Path]:
    """A new empty temporary file in ``folder`` (a hidden ``.upload-*`` name): ``(fd, path)``."""
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=folder)
    return fd, Path(name)


def remove_quietly(path: Path | None) -> None:
    """Delete a file if it exists (cleanup on error paths never raises)."""
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # pragma: no cover - a read-only folder, a race with housekeeping
        log.warning("could not remove the temporary file %s: %s", path, exc)


def sweep_temporary(folder: Path, older_than_s: float = 3600.0) -> int:
    """Remove the ``.upload-*`` temporary files a killed process left in ``folder`` (only those not
    touched for ``older_than_s``: a running upload keeps writing its own); returns how many."""
    if not folder.is_dir():
        return 0
    now = time.time()
    removed = 0
    for path in folder.glob(TEMP_PREFIX + "*"):
        try:
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed += 1
        except OSError:  # pragma: no cover - removed meanwhile
            continue
    if removed:
        log.info("removed %d stale temporary upload files in %s", removed, folder)
    return removed


def place_file(temp: Path, folder: Path, name: str) -> Path:
    """Move the finished file ``temp`` into ``folder`` under ``name`` or the first free
    ``stem-N.ext``, atomically and never replacing an existing file; returns the final path.

    The name is claimed with a hard link (fails if the name exists), then ``temp`` is removed; on a
    filesystem without hard links an exclusive empty placeholder is created and replaced. ``temp``
    on another filesystem is first copied next to the target.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if temp.stat().st_dev != folder.stat().st_dev:
        fd, local = temp_file(folder)
        os.close(fd)
        try:
            shutil.copyfile(temp, local)
        except BaseException:
            remove_quietly(local)
            raise
        remove_quietly(temp)
        temp = local
    try:
        for candidate in _candidates(name):
            target = folder / candidate
            if _claim(temp, target):
                return target
    finally:
        remove_quietly(temp)
    raise FileExistsError(errno.EEXIST, f"no free name like {name} in {folder}")


def _claim(temp: Path, target: Path) -> bool:
    try:
        os.link(temp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV}:
            raise
    try:  # no hard links here: reserve the name, then replace the empty placeholder
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
    return True
