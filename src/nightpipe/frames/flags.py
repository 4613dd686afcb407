"""Bit flags of the mask plane of calibrated frames, and of source-table ``flags`` columns.

A calibrated frame's MASK extension holds these bits OR-ed together (uint8 on disk: the
pixel flags are bits 0-7; uint16 in memory); zero means a good pixel. Source flags reuse
the same bits for "the aperture touches a pixel with this flag", plus source-only bits
from ``EDGE`` on.
"""

from __future__ import annotations

from enum import IntFlag


class PixelFlag(IntFlag):
    """Why a pixel (or a source's aperture) is not clean."""

    SATURATED = 1
    HOT = 2
    DEAD = 4
    COSMIC_RAY = 8
    NONLINEAR = 16
    BAD_COLUMN = 32
    NO_DATA = 64  # NaN input, outside the overlap, trimmed...
    LOW_FLAT = 128
    # source-only flags
    EDGE = 256
    NEIGHBOUR = 512
    BLENDED = 1024
    FIT_FAILED = 2048


BAD_PIXEL_FLAGS = PixelFlag.HOT | PixelFlag.DEAD | PixelFlag.BAD_COLUMN | PixelFlag.LOW_FLAT


def describe(value: int) -> str:
    """Names of the flags set in ``value``, e.g. ``'SATURATED|COSMIC_RAY'`` (``''`` for none)."""
    return "|".join(f.name for f in PixelFlag if f.name and value & f)
