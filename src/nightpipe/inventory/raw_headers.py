"""Reading the header blocks of a FITS file (plain, gzip or bzip2) without its data."""

from __future__ import annotations

import bz2
import gzip
import math
import os
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from nightpipe.errors import FitsReadError
from nightpipe.frames.headers import parse_cards

_COMPRESSED = (".gz", ".bz2")
BLOCK = 2880
_HINT_BAD = "the file is corrupt, truncated or not FITS; re-copy it or move it out of the folder"
_HINT_NOT_FITS = "move it out of the night folder, or give it a name without a FITS suffix"
_HINT_TRUNCATED = (
    "re-copy it from the camera; if it is still being written, scan again when the copy has finished"
)
#: What a file that is not FITS starts with, to say what it is instead.
_MAGIC = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
)


@dataclass(frozen=True)
class RawHdu:
    """One HDU as read from the raw header blocks: its cards and whether it holds a 2-D image."""

    index: int
    cards: dict[str, Any]
    comments: dict[str, str]
    image: bool


def _open_raw(path: str) -> BinaryIO:
    lower = path.lower()
    if lower.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    if lower.endswith(".bz2"):
        return cast(BinaryIO, bz2.open(path, "rb"))
    return open(path, "rb")


def not_fits_reason(start: bytes) -> str:
    """What a file is, from its first bytes, when it does not start as FITS does.

    Examples
    --------
    >>> not_fits_reason(b"\\xff\\xd8\\xff\\xe0")
    'not a FITS file: a JPEG image'
    >>> not_fits_reason(b"Observing log")
    'not a FITS file: text'
    """
    for magic, what in _MAGIC:
        if start.startswith(magic):
            return f"not a FITS file: {what}"
    sample = start[:512]
    if sample and all(32 <= b < 127 or b in b"\t\r\n" for b in sample):
        return "not a FITS file: text"
    return "not a FITS file (no SIMPLE card at the start)"


def _has_end(block: bytes) -> bool:
    return any(block[i : i + 80].rstrip() == b"END" for i in range(0, len(block), 80))


def _axes(cards: dict[str, Any], prefix: str) -> list[int]:
    count = cards.get(f"{prefix}NAXIS", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 999:
        raise ValueError(f"bad {prefix}NAXIS = {count!r}")
    axes = [cards.get(f"{prefix}NAXIS{i}") for i in range(1, count + 1)]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in axes):
        raise ValueError(f"bad {prefix}NAXISn values {axes!r}")
    return [int(n) for n in axes if n is not None]


def _data_bytes(cards: dict[str, Any]) -> int:
    """Size of an HDU's data (unpadded), from BITPIX, NAXISn, PCOUNT and GCOUNT."""
    axes = _axes(cards, "")
    bitpix = cards.get("BITPIX")
    if bitpix not in (8, 16, 32, 64, -32, -64):
        raise ValueError(f"bad BITPIX = {bitpix!r}")
    if not axes:
        return 0
    if cards.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]
    pcount, gcount = cards.get("PCOUNT", 0), cards.get("GCOUNT", 1)
    pcount = pcount if isinstance(pcount, int) else 0
    gcount = gcount if isinstance(gcount, int) else 1
    return abs(int(bitpix)) // 8 * gcount * (pcount + math.prod(axes))


def _holds_image(cards: dict[str, Any], index: int) -> bool:
    xtension = str(cards.get("XTENSION", "")).strip().upper()
    if xtension == "BINTABLE" and cards.get("ZIMAGE") is True:
        axes = _axes(cards, "Z")
    elif index == 0 or xtension in {"IMAGE", "IUEIMAGE"}:
        axes = _axes(cards, "")
    else:
        return False
    return len(axes) >= 2 and axes[0] > 0 and axes[1] > 0 and all(n == 1 for n in axes[2:])


def read_raw_headers(path: str) -> list[RawHdu]:
    """Read every HDU header of a FITS file (plain, gzip or bzip2) without touching the data.

    Header blocks are parsed with :func:`nightpipe.frames.headers.parse_cards` and the
    data of each HDU is skipped by seeking; a file whose data end beyond its size is
    truncated. Bytes after the last HDU that do not start an extension are ignored, as
    astropy does.

    Raises
    ------
    FitsReadError
        Not FITS, a truncated header or data, or impossible structural keywords.
    """
    size = None if path.lower().endswith(_COMPRESSED) else os.path.getsize(path)
    hdus: list[RawHdu] = []
    try:
        with _open_raw(path) as handle:
            offset = 0
            while True:
                header = bytearray()
                while True:
                    block = handle.read(BLOCK)
                    if not header and hdus and not block.startswith(b"XTENSION="):
                        return hdus  # end of file, or trailing bytes that start no extension
                    if offset == 0 and not header and not block:
                        raise FitsReadError("empty file (0 bytes)", path=path, hint=_HINT_TRUNCATED)
                    if not header and not hdus and not b"SIMPLE  =".startswith(block[:9]):
                        raise FitsReadError(not_fits_reason(block), path=path, hint=_HINT_NOT_FITS)
                    if len(block) < BLOCK:
                        ends = offset + len(header) + len(block)
                        raise FitsReadError(
                            f"truncated header: HDU {len(hdus)} ends after {ends} bytes, before its END card",
                            path=path,
                            hint=_HINT_TRUNCATED,
                        )
                    header += block
                    if _has_end(block):
                        break
                cards, comments, _ = parse_cards(bytes(header))
                data = _data_bytes(cards)
                hdus.append(RawHdu(len(hdus), cards, comments, _holds_image(cards, len(hdus))))
                offset += len(header)
                data_end = offset + data
                offset += -(-data // BLOCK) * BLOCK
                if size is not None:
                    if data_end > size:
                        raise FitsReadError(
                            f"truncated file: HDU {len(hdus) - 1} needs {data_end} bytes, "
                            f"the file has {size}",
                            path=path,
                            hint=_HINT_TRUNCATED,
                        )
                    if offset >= size:
                        return hdus
                handle.seek(offset)
                if size is None and handle.tell() < data_end:
                    raise FitsReadError(
                        f"truncated file (HDU {len(hdus) - 1})", path=path, hint=_HINT_TRUNCATED
                    )
    except FitsReadError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise FitsReadError(f"not a readable FITS file ({exc})", path=path, hint=_HINT_BAD) from None
