"""Unpacking a ZIP or tar (gz, bz2, xz) of a night into an uploads folder, safely.

Every member is judged on its own: a path that is absolute, has a drive letter or climbs with
``..``, a link or a device is refused; files that are not FITS (``README.txt``, ``.DS_Store``,
``__MACOSX/``) are skipped with the reason; a FITS member is streamed to a temporary file in the
destination, checked by :func:`~nightpipe.web.uploads.fitscheck.check_fits` and renamed to a safe,
unique name (folders inside the archive are flattened). The archive as a whole is refused (and
whatever it had already stored removed) when it has more than ``max_members`` members, when the
sizes it declares, or the bytes it really unpacks to, pass the quota, or when it is damaged.
"""

from __future__ import annotations

import logging
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

from nightpipe.web.uploads.fitscheck import check_fits
from nightpipe.web.uploads.limits import (
    Accepted,
    Outcome,
    Rejected,
    Skipped,
    UploadLimits,
    UploadRejected,
    size_text,
)
from nightpipe.web.uploads.names import (
    archive_kind,
    is_fits_name,
    last_component,
    place_file,
    remove_quietly,
    safe_name,
    temp_file,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Bytes of central directory allowed per permitted member (46 fixed bytes, a long name, extras).
_DIRECTORY_BYTES_PER_MEMBER = 1024
#: What a damaged archive raises (an OSError without errno: gzip's BadGzipFile; disk errors stay errors).
_DAMAGED = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")


class _ArchiveRefused(UploadRejected):
    """The whole archive is refused (too many members, over quota, damaged)."""


class _MemberTooBigError(Exception):
    pass


def member_problem(member: str) -> str | None:
    """Why a member path is refused (absolute, drive letter, ``..``, NUL), else ``None``."""
    if "\x00" in member:
        return "its name holds a NUL character; the archive is damaged or was made to attack a server"
    if member.startswith(("/", "\\")):
        return "it has an absolute path; archives must hold relative paths (archive the night folder itself)"
    if _DRIVE.match(member):
        return "its path starts with a drive letter; archives must hold relative paths"
    if ".." in re.split(r"[/\\]", member):
        return "its path climbs out of the archive with '..'; such members are never unpacked"
    return None


def skip_reason(member: str) -> str | None:
    """Why a harmless member is left out (macOS metadata, hidden or non-FITS files), else ``None``."""
    parts = [p for p in re.split(r"[/\\]", member) if p]
    base = parts[-1] if parts else member
    if "__MACOSX" in parts:
        return "macOS metadata (__MACOSX), not a frame"
    if base.startswith("."):
        return "a hidden file, not a frame"
    if archive_kind(base) is not None:
        return "archives inside an archive are not unpacked; upload it on its own"
    if not is_fits_name(base):
        return "not a FITS file name (.fits, .fit, .fts, .fz, .fits.gz), left out"
    return None


class _Extraction:
    """The state of one archive being unpacked: outcomes, bytes, the files stored so far."""

    def __init__(self, name: str, dest_dir: Path, limits: UploadLimits):
        self.name = name
        self.dest_dir = dest_dir
        self.limits = limits
        self.outcomes: list[Outcome] = []
        self.unpacked = 0  # bytes streamed out of the archive so far (every member, kept or not)
        self.placed: list[Path] = []

    def refuse(self, reason: str) -> _ArchiveRefused:
        return _ArchiveRefused(self.name, reason)

    def over_quota(self) -> _ArchiveRefused:
        quota = size_text(self.limits.quota_remaining_bytes)
        return self.refuse(
            f"it unpacks to more than the {quota} left in your quota; nothing of it was stored "
            "(delete old uploads, or upload a smaller part of the night)"
        )

    def check_count(self, count: int) -> None:
        if count > self.limits.max_members:
            raise self.refuse(
                f"it holds more than {self.limits.max_members} members; nothing of it was stored "
                "(split the night into several archives)"
            )

    def member(
        self, member: str, size: int, is_link: bool, is_special: bool, opener: Callable[[], IO[bytes]]
    ) -> None:
        """Judge, stream, check and place one (non-directory) member."""
        display = f"{self.name}: {member}"
        problem = member_problem(member)
        if problem is None and is_link:
            problem = "it is a link; only regular files are unpacked"
        if problem is None and is_special:
            problem = "it is a device or special file; only regular files are unpacked"
        if problem is not None:
            self.outcomes.append(Rejected(display, problem))
            return
        reason = skip_reason(member)
        if reason is not None:
            self.outcomes.append(Skipped(display, reason))
            return
        if size > self.limits.max_file_bytes:
            self.outcomes.append(Rejected(display, self._too_big(size)))
            return
        name = safe_name(last_component(member))
        fd, temp = temp_file(self.dest_dir)
        try:
            with os.fdopen(fd, "wb") as out, opener() as source:
                written = self._copy(source, out)
            summary = check_fits(temp, name, self.limits)
            final = place_file(temp, self.dest_dir, name)
        except _MemberTooBigError:
            self.outcomes.append(Rejected(display, self._too_big(None)))
            return
        except UploadRejected as exc:
            if isinstance(exc, _ArchiveRefused):
                raise
            self.outcomes.append(Rejected(display, exc.reason))
            return
        except zipfile.BadZipFile as exc:  # a CRC or size mismatch: damage, or a zip bomb's lie
            reason = f"it is damaged: what it unpacks to does not match the archive's records ({exc}); "
            reason += "it was left out"
            self.outcomes.append(Rejected(display, reason))
            return
        except (NotImplementedError, RuntimeError) as exc:  # compression method, password
            reason = f"this member cannot be unpacked ({exc}); it was left out"
            self.outcomes.append(Rejected(display, reason))
            return
        finally:
            remove_quietly(temp)  # already renamed when accepted
        self.placed.append(final)
        self.outcomes.append(Accepted(final.name, final, written, summary, source=display))

    def _too_big(self, size: int | None) -> str:
        limit = size_text(self.limits.max_file_bytes)
        said = f"it is {size_text(size)}, " if size is not None else "it unpacks to "
        return f"{said}more than the limit of {limit} per file; it was left out"

    def _copy(self, source: IO[bytes], out: IO[bytes]) -> int:
        written = 0
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            self.unpacked += len(chunk)
            if self.unpacked > self.limits.quota_remaining_bytes:
                raise self.over_quota()
            if written > self.limits.max_file_bytes:
                raise _MemberTooBigError()
            out.write(chunk)
        return written


def _zip_directory_guard(path: Path, job: _Extraction) -> None:
    """Refuse a ZIP whose end record announces more members (or a larger central directory) than
    allowed, before :mod:`zipfile` reads the directory into memory."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail_start = max(0, size - (_EOCD.size + 65535))
        handle.seek(tail_start)
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            return  # not a ZIP: zipfile says so
        _, _, _, _, entries, directory_size, _, _ = _EOCD.unpack_from(tail, at)
        locator_at = at - _ZIP64_LOCATOR.size
        if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and locator_at >= 0:
            signature, _, zip64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
            if signature == b"PK\x06\x07" and zip64_offset + _ZIP64_EOCD.size <= size:
                handle.seek(zip64_offset)
                record = handle.read(_ZIP64_EOCD.size)
                if record[:4] == b"PK\x06\x06":
                    entries, directory_size = _ZIP64_EOCD.unpack(record)[7:9]
    job.check_count(entries)
    if directory_size > job.limits.max_members * _DIRECTORY_BYTES_PER_MEMBER + 65536:
        job.check_count(job.limits.max_members + 1)


def _is_zip_link(info: zipfile.ZipInfo) -> tuple[bool, bool]:
    mode = info.external_attr >> 16
    if info.create_system != 3 or not mode:  # not written on Unix: no file types recorded
        return False, False
    kind = stat.S_IFMT(mode)
    return stat.S_ISLNK(mode), kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK)


def _extract_zip(path: Path, job: _Extraction) -> None:
    _zip_directory_guard(path, job)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        job.check_count(len(infos))
        declared = sum(info.file_size for info in infos if not info.is_dir())
        if declared > job.limits.quota_remaining_bytes:
            raise job.over_quota()
        for info in infos:
            if info.is_dir():
                continue
            is_link, is_special = _is_zip_link(info)
            if info.flag_bits & 0x1:
                reason = "it is encrypted; upload it unencrypted"
                job.outcomes.append(Rejected(f"{job.name}: {info.filename}", reason))
                continue
            job.member(info.filename, info.file_size, is_link, is_special, partial(archive.open, info))


def _extract_tar(path: Path, job: _Extraction) -> None:
    declared = 0
    count = 0
    with tarfile.open(path, mode="r|*") as archive:  # a stream: each member read once, in order
        for member in archive:
            count += 1
            job.check_count(count)
            if member.isdir():
                continue
            if member.isreg():
                declared += member.size
                if declared > job.limits.quota_remaining_bytes:
                    raise job.over_quota()

            def opener(m: tarfile.TarInfo = member) -> IO[bytes]:
                handle = archive.extractfile(m)
                if handle is None:  # pragma: no cover - regular members always have one
                    raise RuntimeError("no data")
                return handle

            link = member.issym() or member.islnk()
            job.member(member.name, member.size, link, not link and not member.isreg(), opener)


def extract_archive(
    path: Path, dest_dir: Path, limits: UploadLimits, name: str | None = None
) -> list[Outcome]:
    """Unpack the ZIP or tar at ``path`` (sent as ``name``, default its file name) into ``dest_dir``.

    Returns one outcome per member that is not a directory: :class:`Accepted` (stored in
    ``dest_dir`` under a safe unique name), :class:`Rejected` (with the reason) or :class:`Skipped`.
    Raises :class:`UploadRejected` when the archive as a whole is refused; then nothing of it is
    left in ``dest_dir``. Temporary files are removed on every path.
    """
    name = name or path.name
    kind = archive_kind(name)
    if kind is None:
        kind = "zip" if zipfile.is_zipfile(path) else "tar"
    job = _Extraction(name, dest_dir, limits)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            _extract_zip(path, job)
        else:
            _extract_tar(path, job)
    except BaseException as exc:
        for placed in job.placed:
            remove_quietly(placed)
        if isinstance(exc, UploadRejected):
            raise
        if isinstance(exc, _DAMAGED) and not (isinstance(exc, OSError) and exc.errno is not None):
            what = "ZIP" if kind == "zip" else "tar"
            raise job.refuse(
                f"this is not a {what} archive, or it is damaged or cut off ({exc}); nothing of it was "
                "stored (make the archive again and upload it)"
            ) from None
        raise
    accepted = sum(isinstance(o, Accepted) for o in job.outcomes)
    log.info("%s: %d of %d members accepted", name, accepted, len(job.outcomes))
    return job.outcomes
