"""Helpers of the upload tests: real frames of the shared data, bad FITS files, archives."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

from nightpipe.web.uploads import UploadLimits

MB = 1024 * 1024
HATP = "hatp32-microobservatory"
HATP_FRAMES = ("HATP-32171220013343.FITS", "HATP-32171220013612.FITS", "HATP-32171220013912.FITS")


def limits(
    max_file: int = 40 * MB, quota: int = 200 * MB, header: int = 256 * 1024, members: int = 50
) -> UploadLimits:
    return UploadLimits(max_file, quota, header, members)


def hatp(shared: Path, n: int = 0) -> Path:
    return shared / HATP / HATP_FRAMES[n]


def all_files(folder: Path) -> set[str]:
    """Every file under ``folder`` (hidden ones too), relative, to prove nothing is left behind."""
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}


def card(text: str) -> bytes:
    return text.ljust(80).encode("ascii")


def header_bytes(*cards: str, end: bool = True) -> bytes:
    raw = b"".join(card(c) for c in cards) + (card("END") if end else b"")
    return raw + b" " * (-len(raw) % 2880)


def endless_header(path: Path, n_cards: int = 50_000) -> Path:
    """A FITS file whose header has ``n_cards`` cards and no END (a "huge header" attack)."""
    with path.open("wb") as out:
        out.write(card("SIMPLE  =                    T") + card("BITPIX  =                   16"))
        out.write(card("NAXIS   =                    2") + card("NAXIS1  =                   10"))
        out.write(card("NAXIS2  =                   10"))
        filler = card("COMMENT the header goes on and on")
        out.write(filler * (n_cards - 5))
    return path


def big_fits(path: Path, n_bytes: int) -> Path:
    """A valid 16-bit FITS image of about ``n_bytes`` of data, written without holding it in memory."""
    nx = 2000
    ny = max(1, n_bytes // (2 * nx))
    head = header_bytes(
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    2",
        f"NAXIS1  = {nx:>20}",
        f"NAXIS2  = {ny:>20}",
        "IMAGETYP= 'Light Frame'",
        "EXPTIME =                 30.0",
    )
    data = nx * ny * 2
    with path.open("wb") as out:
        out.write(head)
        row = b"\x01\x00" * nx
        for _ in range(ny):
            out.write(row)
        out.write(b"\x00" * (-data % 2880))
    return path


def zip_of(members: dict[str, bytes | Path], path: Path) -> Path:
    """A ZIP whose member names are written exactly as given (no sanitising by zipfile)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def lying_zip(path: Path, real: bytes, declared: int) -> Path:
    """A zip bomb: one deflated member whose headers declare ``declared`` bytes, far fewer than
    the ``real`` bytes the data unpacks to."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.fits", real)
    raw = bytearray(buffer.getvalue())
    real_size = struct.pack("<L", len(real))
    # the uncompressed size is at offset 22 of the local header and 24 of the central directory entry
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    assert raw[local + 22 : local + 26] == real_size and raw[central + 24 : central + 28] == real_size
    raw[local + 22 : local + 26] = struct.pack("<L", declared)
    raw[central + 24 : central + 28] = struct.pack("<L", declared)
    path.write_bytes(bytes(raw))
    return path
