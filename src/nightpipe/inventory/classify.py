"""The frames of one file: its image HDUs, their normalised headers and their kinds.

:func:`read_file_frames` skips tables and auxiliary planes, applies the camera overrides and
normalises each header (:mod:`nightpipe.frames.headers`); when nothing in the header or the
file name tells a frame's kind, it classifies the frame from a central cut-out of its pixels.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nightpipe.config import Settings
from nightpipe.errors import FitsReadError
from nightpipe.frames.headers import FrameHeader, apply_overrides, infer_kind_from_pixels, normalize_header
from nightpipe.frames.timing import ExposureTime
from nightpipe.inventory.raw_headers import read_raw_headers

# the package's logger, as before the split: records keep their name (and the "[inventory]" tag)
log = logging.getLogger("nightpipe.inventory")

SAMPLE_SIZE = 512
#: Image extensions that are not frames: uncertainty, mask and model planes (ours: UNCERT, MASK),
#: Gemini VAR/DQ, astroscrappy SKYFIT, TESS APERTURE...
AUXILIARY_EXTNAMES = frozenset(
    {"UNCERT", "MASK", "VAR", "VARIANCE", "DQ", "ERR", "ERROR", "BPM", "WEIGHT", "WHT", "SKYFIT", "SKY",
     "BKG", "BACKGROUND", "APERTURE", "FLAGS", "IVAR"}
)  # fmt: skip


@dataclass(frozen=True)
class FrameInfo:
    """One image HDU of a file: its index, kept header cards, normalised header, time; the scan's
    notes on its header and, for a frame that cannot be used, why (:mod:`nightpipe.inventory.notes`)."""

    hdu: int
    cards: dict[str, Any]
    header: FrameHeader
    time: ExposureTime | None = None
    comments: dict[str, str] = field(default_factory=dict)
    jd_utc: float | None = None
    bjd_tdb: float | None = None
    night: str | None = None
    notes: tuple[str, ...] = ()
    unusable: str | None = None


def read_file_frames(path: str, settings: Settings) -> list[FrameInfo]:
    """Read the headers of every image HDU of a file and normalise them (no pixel data read,
    except a central cut-out when nothing in the header or name tells the frame's kind).

    Each extension's cards are those of the primary header updated with the extension's.
    Extensions named in :data:`AUXILIARY_EXTNAMES` (uncertainty, mask, variance planes)
    are not frames and are skipped. Camera overrides of ``settings.camera.overrides`` are
    applied before normalising.

    Raises
    ------
    FitsReadError
        The file is not FITS, is truncated, or holds no 2-D image.
    """
    name = os.path.basename(path)
    raw = read_raw_headers(path)
    primary = raw[0]
    frames: list[FrameInfo] = []
    for hdu in raw:
        if not hdu.image or str(hdu.cards.get("EXTNAME", "")).strip().upper() in AUXILIARY_EXTNAMES:
            continue
        cards = hdu.cards if hdu.index == 0 else {**primary.cards, **hdu.cards}
        cards = apply_overrides(cards, settings.camera.overrides)
        comments = primary.comments | hdu.comments
        header = normalize_header(cards, filename=name, comments=comments)
        if header.kind == "unknown" and header.kind_inferred:
            header = _kind_from_pixels(path, hdu.index, header)
        frames.append(FrameInfo(hdu.index, cards, header, comments=comments))
    if not frames:
        cubes = [h for h in raw if not h.image and _is_cube(h.cards)]
        if cubes:
            shape = "x".join(
                str(cubes[0].cards.get(f"NAXIS{i}")) for i in range(1, cubes[0].cards["NAXIS"] + 1)
            )
            raise FitsReadError(
                f"HDU {cubes[0].index} is a {shape} cube, not a 2-D frame (a debayered colour image?)",
                path=path,
                hint="scan the raw single-plane frames, or split the planes into separate files",
            )
        raise FitsReadError(
            "no 2-D image frame in any HDU (only tables, or uncertainty/mask planes)",
            path=path,
            hint="move it out of the night folder if it is not a frame",
        )
    return frames


def _is_cube(cards: dict[str, Any]) -> bool:
    naxis = cards.get("NAXIS")
    if not isinstance(naxis, int) or naxis < 3 or str(cards.get("XTENSION", "IMAGE")).strip() != "IMAGE":
        return False
    return all(isinstance(cards.get(f"NAXIS{i}"), int) for i in range(1, naxis + 1))


def _kind_from_pixels(path: str, index: int, header: FrameHeader) -> FrameHeader:
    """Classify from a central cut-out (big images: read through astropy's section, only those rows)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, mode="readonly", memmap=False) as hdul:
                hdu = hdul[index]
                ny, nx = hdu.shape[-2:]
                y0, x0 = max(ny // 2 - SAMPLE_SIZE // 2, 0), max(nx // 2 - SAMPLE_SIZE // 2, 0)
                window = (..., slice(y0, y0 + SAMPLE_SIZE), slice(x0, x0 + SAMPLE_SIZE))
                small = math.prod(hdu.shape) * abs(int(hdu.header.get("BITPIX", 16))) // 8 <= 64 << 20
                # one read of a small image beats astropy's row-by-row section reads
                cut = np.asarray((hdu.data if small else hdu.section)[window], dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError, AttributeError, EOFError) as exc:
        log.debug("%s: cannot sample the pixels of HDU %d: %s", path, index, exc)
        return header
    kind, reason = infer_kind_from_pixels(cut.reshape(cut.shape[-2:]), header.exptime)
    return replace(header, kind=kind, kind_source=reason[:64])
