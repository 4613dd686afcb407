"""Meridian flips: at which frame a night's field turned by 180 degrees, and by how much.

A German equatorial mount turns the camera by 180 degrees on the sky when the target crosses
the meridian, often in the middle of a transit: the stars land on other pixels (a step in the
relative flux from flat-field errors, a jump of every pixel position). The flip is the first
frame whose pier side (``PIERSIDE``, carried as ``pier_side`` in the source tables) differs from
the night's first one; without pier sides, the first frame whose field rotation (from the star
matrix's per-frame maps onto the reference frame) jumps by more than 90 degrees from the frame
before it: an alt-azimuth mount's field rotation turns the field by a degree or two per frame at
most, so a slow rotation is never taken for a flip. Only the first flip of a night is found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: A change of field rotation between consecutive frames larger than this is a flip (degrees).
FLIP_JUMP_DEG = 90.0


@dataclass(frozen=True)
class Flip:
    """A meridian flip: the first frame after it, the field's turn across it, how it was found."""

    index: int
    turn_deg: float
    source: str  # "PIERSIDE" or "field rotation"


def wrap_deg(angle: FloatArray | float) -> FloatArray:
    """Angles folded into -180..180 degrees."""
    return np.asarray(np.mod(np.asarray(angle, dtype=np.float64) + 180.0, 360.0) - 180.0)


def turn_across(rotation_deg: FloatArray, index: int, *, frames: int = 10) -> float:
    """The change of field rotation at frame ``index`` (degrees, -180..180): the circular median
    of the ``frames`` known rotations after it less that of the ``frames`` before it; 180 when
    either side has none."""
    before = rotation_deg[:index][np.isfinite(rotation_deg[:index])][-frames:]
    after = rotation_deg[index:][np.isfinite(rotation_deg[index:])][:frames]
    if before.size == 0 or after.size == 0:
        return 180.0
    jumps = wrap_deg(after[:, None] - before[None, :]).ravel()
    centre = float(jumps[0])
    return float(wrap_deg(centre + np.median(wrap_deg(jumps - centre))))


def find_flip(rotation_deg: FloatArray, pier_sides: Sequence[str | None] = ()) -> Flip | None:
    """The night's meridian flip from the frames' pier sides, else from a jump of their field
    rotation (rules in the module doc); ``None`` when there is none.

    Examples
    --------
    >>> rot = np.r_[np.zeros(5), np.full(5, 179.5)]
    >>> find_flip(rot)
    Flip(index=5, turn_deg=179.5, source='field rotation')
    >>> find_flip(np.linspace(0, 40, 10))  # an alt-azimuth mount turning 4 degrees a frame
    >>> find_flip(np.full(4, np.nan), ["EAST", "EAST", "WEST", "WEST"]).index
    2
    """
    sides = [s for s in pier_sides if s is not None]
    if sides:
        first = sides[0]
        for i, side in enumerate(pier_sides):
            if side is not None and side != first:
                return Flip(i, turn_across(rotation_deg, i), "PIERSIDE")
        return None
    known = np.flatnonzero(np.isfinite(rotation_deg))
    if known.size < 2:
        return None
    jumps = np.abs(wrap_deg(np.diff(rotation_deg[known])))
    big = np.flatnonzero(jumps > FLIP_JUMP_DEG)
    if big.size == 0:
        return None
    index = int(known[big[0] + 1])
    return Flip(index, turn_across(rotation_deg, index), "field rotation")
