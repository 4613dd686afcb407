"""Is an uploaded file a FITS image we can use? A streaming structural check, then astropy.

The file is read block by block (2880 bytes), never whole: each HDU's header must reach its
``END`` card within ``max_header_bytes`` (a header of endless cards is refused while it is being
read), and the data each header promises (``|BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1*...*NAXISn)``
bytes) must all be there. Gzip and bzip2 files are decompressed as a stream with the per-file size
cap, so a small ``.fits.gz`` cannot unpack to terabytes. Once the structure is sound, astropy (which
the pipeline reads with) opens the headers lazily to confirm it understands the image HDU.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import math
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from astropy.io import fits

from nightpipe.frames.headers.camera import exposure_time, filter_name
from nightpipe.frames.headers.cards import parse_cards
from nightpipe.frames.headers.keywords import OBJECT_KEYS, clean_str, first_value
from nightpipe.frames.headers.kind import kind_from_header
from nightpipe.web.uploads.limits import FitsSummary, UploadLimits, UploadRejected, size_text
from nightpipe.web.uploads.names import is_fits_name

log = logging.getLogger(__name__)

BLOCK = 2880
CARD = 80
MAX_HDUS = 1000
_CHUNK = 1 << 20
_BITPIX = {8, 16, 32, 64, -32, -64}
ACCEPTED_TEXT = ".fits, .fit, .fts, .fz, .fits.gz or .fits.bz2"  # and MIDAS .mt, not advertised


@dataclass
class _Hdu:
    index: int
    cards: dict[str, Any]
    comments: dict[str, str]
    data_bytes: int


class _Reader:
    """Sequential reads of a (possibly decompressing) stream, counting bytes against a cap."""

    def __init__(self, handle: IO[bytes], name: str, cap: int | None, file_size: int | None):
        self.handle = handle
        self.name = name
        self.cap = cap  # the unpacked-size limit of a compressed file
        self.file_size = file_size  # a plain file: skip by seeking
        self.position = 0

    def read(self, n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left > 0:
            chunk = self.handle.read(min(left, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
            self._count(len(chunk))
        return b"".join(parts)

    def skip(self, n: int) -> int:
        """Skip up to ``n`` bytes; returns how many there were."""
        if self.file_size is not None:
            skipped = max(0, min(n, self.file_size - self.position))
            self.position += skipped
            self.handle.seek(self.position)
            return skipped
        skipped = 0
        while skipped < n:
            chunk = self.handle.read(min(n - skipped, _CHUNK))
            if not chunk:
                break
            skipped += len(chunk)
            self._count(len(chunk))
        return skipped

    def _count(self, n: int) -> None:
        self.position += n
        if self.cap is not None and self.position > self.cap:
            raise UploadRejected(
                self.name,
                f"unpacked, this file is larger than the limit of {size_text(self.cap)} per file, "
                "so it was not stored; upload a smaller file",
            )


def _has_end(block: bytes) -> bool:
    return any(block[i : i + CARD].rstrip(b" ") == b"END" for i in range(0, len(block), CARD))


def _read_header(reader: _Reader, index: int, limits: UploadLimits) -> bytes | None:
    """The raw header blocks of HDU ``index`` up to its END card; ``None`` at a clean end of file
    (or trailing bytes that are not an extension, which FITS readers ignore)."""
    name = reader.name
    raw = bytearray()
    while True:
        block = reader.read(BLOCK)
        if not raw:
            if index == 0 and not block.startswith(b"SIMPLE  ="):
                raise UploadRejected(
                    name,
                    "this is not a FITS file (it does not begin with the card 'SIMPLE  ='); "
                    f"upload FITS images ({ACCEPTED_TEXT}) or an archive of them",
                )
            if index > 0 and not block.startswith(b"XTENSION"):
                if block.strip(b"\x00 "):
                    log.info("%s: bytes after HDU %d are not an extension; ignored", name, index - 1)
                return None
        if len(block) < BLOCK or not block:
            raise UploadRejected(
                name,
                f"the file ends inside the header of HDU {index} (no END card): it is cut off; "
                "upload the complete file again",
            )
        raw += block
        if _has_end(block):
            return bytes(raw)
        if len(raw) >= limits.max_header_bytes:
            raise UploadRejected(
                name,
                f"the header of HDU {index} goes on for more than {size_text(limits.max_header_bytes)} "
                "without an END card; this is not a valid FITS file (or a damaged one), so it was not stored",
            )


def _number(cards: Mapping[str, Any], key: str, name: str, index: int, default: int | None = None) -> int:
    value = cards.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UploadRejected(
            name,
            f"HDU {index} has no valid {key} card ({value!r}); the file is damaged or not standard FITS, "
            "so it was not stored",
        )
    return value


def _data_bytes(cards: Mapping[str, Any], name: str, index: int) -> int:
    bitpix = cards.get("BITPIX")
    if isinstance(bitpix, bool) or bitpix not in _BITPIX:
        raise UploadRejected(
            name, f"HDU {index} has BITPIX = {bitpix!r}, which FITS does not allow; the file is damaged"
        )
    naxis = _number(cards, "NAXIS", name, index)
    if naxis > 999:
        raise UploadRejected(name, f"HDU {index} has NAXIS = {naxis}; the file is damaged")
    if naxis == 0:
        return 0
    axes = [_number(cards, f"NAXIS{i}", name, index) for i in range(1, naxis + 1)]
    if index == 0 and cards.get("GROUPS") is True and axes[0] == 0:
        axes = axes[1:]  # random groups
    pcount = _number(cards, "PCOUNT", name, index, 0)
    gcount = _number(cards, "GCOUNT", name, index, 1)
    return abs(int(bitpix)) // 8 * gcount * (pcount + math.prod(axes))


def _image_shape(hdu: _Hdu) -> tuple[tuple[int, ...], bool] | None:
    """(numpy shape, compressed) when this HDU holds an image of at least 2 axes."""
    cards = hdu.cards
    xtension = str(cards.get("XTENSION", "")).strip().upper()
    prefix, compressed = "NAXIS", False
    if xtension == "BINTABLE" and cards.get("ZIMAGE") is True:
        prefix, compressed = "ZNAXIS", True
    elif hdu.index > 0 and xtension != "IMAGE":
        return None
    naxis = cards.get(prefix)
    if isinstance(naxis, bool) or not isinstance(naxis, int) or naxis < 2:
        return None
    axes = [cards.get(f"{prefix}{i}") for i in range(1, naxis + 1)]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in axes):
        return None
    return tuple(int(n) for n in reversed(axes)), compressed


def _walk(reader: _Reader, name: str, limits: UploadLimits) -> list[_Hdu]:
    hdus: list[_Hdu] = []
    while True:
        index = len(hdus)
        if index >= MAX_HDUS:
            reason = f"the file has more than {MAX_HDUS} HDUs; this is not a frame we can use"
            raise UploadRejected(name, reason)
        raw = _read_header(reader, index, limits)
        if raw is None:
            return hdus
        cards, comments, _ = parse_cards(raw)
        hdu = _Hdu(index, cards, comments, _data_bytes(cards, name, index))
        present = reader.skip(hdu.data_bytes)
        if present < hdu.data_bytes:
            raise UploadRejected(
                name,
                f"the file is cut off: HDU {index} promises {hdu.data_bytes:,} bytes of data but only "
                f"{present:,} follow its header; upload the complete file again",
            )
        hdus.append(hdu)
        reader.skip(-hdu.data_bytes % BLOCK)  # padding (a missing last padding is tolerated)


def _structure(path: Path, name: str, limits: UploadLimits) -> list[_Hdu]:
    lower = name.lower()
    if not lower.endswith((".gz", ".bz2")):
        with path.open("rb") as handle:
            return _walk(_Reader(handle, name, None, path.stat().st_size), name, limits)
    try:
        with gzip.open(path, "rb") if lower.endswith(".gz") else bz2.open(path, "rb") as stream:
            return _walk(_Reader(cast(IO[bytes], stream), name, limits.max_file_bytes, None), name, limits)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise UploadRejected(
            name,
            f"the compressed data is damaged or cut off ({exc}); compress the original again and upload that",
        ) from None


def _astropy_reads(path: Path, name: str, index: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=True) as hdul:
                _ = hdul[index].header
        except Exception as exc:  # astropy's errors are many and not a hierarchy
            raise UploadRejected(
                name, f"astropy cannot read HDU {index} of this file ({exc}); the file is damaged"
            ) from None


def check_fits(path: Path, name: str, limits: UploadLimits) -> FitsSummary:
    """Check that the file at ``path`` (sent as ``name``) is a complete FITS file with an image.

    ``name`` decides the compression (``.gz``, ``.bz2``) and is the one messages give. Raises
    :class:`UploadRejected` for a name without a FITS extension, a file over the size limit, a file
    that does not begin with ``SIMPLE  =``, a header without END within ``max_header_bytes``, data
    shorter than any header promises, and a file with no image of at least two axes.
    """
    if not is_fits_name(name):
        raise UploadRejected(
            name,
            f"the name does not end in {ACCEPTED_TEXT}; upload FITS images or an archive (.zip, .tar.gz) "
            "of them (rename the file if it is a FITS image)",
        )
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise UploadRejected(
            name,
            f"the file is {size_text(size)}, more than the limit of {size_text(limits.max_file_bytes)} "
            "per file; it was not stored",
        )
    hdus = _structure(path, name, limits)
    images = [(hdu, found) for hdu in hdus if (found := _image_shape(hdu)) is not None]
    if not images:
        raise UploadRejected(
            name,
            "no HDU of this FITS file holds an image of at least two dimensions (a table or an empty "
            "header); upload image frames",
        )
    hdu, (shape, compressed) = images[0]
    _astropy_reads(path, name, hdu.index)
    cards = {**hdus[0].cards, **hdu.cards} if hdu.index else hdu.cards
    comments = {**hdus[0].comments, **hdu.comments} if hdu.index else hdu.comments
    kind, _, _ = kind_from_header(cards, name)
    return FitsSummary(
        kind=kind,
        shape=shape,
        hdu=hdu.index,
        object=clean_str(first_value(cards, OBJECT_KEYS), 68),
        filter=filter_name(cards, comments),
        exptime=exposure_time(cards),
        date_obs=clean_str(cards.get("DATE-OBS"), 32),
        n_hdus=len(hdus),
        compressed=compressed,
    )
