"""Separating what moves from the static sky: detections that the other frames do not confirm.

Every detection of the night goes into one k-d tree on the sphere; a detection whose place is
also detected on at least ``min_frames`` other frames (within ``radius_arcsec``) belongs to
the static sky (stars, galaxies). What is left, minus flagged artefacts (cosmic rays, hot
pixels, edges: the calibration step's flags), are the transient detections the linker works on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nightpipe.identify.match import unit_vectors

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Detections:
    """Detections of a night, one row each: frame, time (JD UTC), sky place, error, source row, flags."""

    frame: IntArray
    jd: FloatArray
    ra: FloatArray
    dec: FloatArray
    sigma_arcsec: FloatArray
    source_index: IntArray
    flags: IntArray

    def __len__(self) -> int:
        return int(self.frame.size)

    def subset(self, keep: NDArray[np.bool_] | IntArray) -> Detections:
        """The detections selected by a mask or an index array."""
        return Detections(*(np.asarray(getattr(self, f))[keep] for f in self.__dataclass_fields__))


def static_mask(det: Detections, radius_arcsec: float, min_frames: int) -> NDArray[np.bool_]:
    """True for detections whose place is detected on at least ``min_frames`` other frames."""
    from scipy.spatial import cKDTree

    if len(det) == 0:
        return np.zeros(0, dtype=bool)
    vectors = unit_vectors(det.ra, det.dec)
    chord = 2.0 * np.sin(np.radians(radius_arcsec / 3600.0) / 2.0)
    neighbours = cKDTree(vectors).query_ball_point(vectors, chord)
    static = np.zeros(len(det), dtype=bool)
    for k, found in enumerate(neighbours):
        frames = np.unique(det.frame[np.asarray(found, dtype=np.int64)])
        static[k] = frames.size - 1 >= min_frames  # other frames than its own
    return static


def transients(det: Detections, *, radius_arcsec: float, min_frames: int, bad_flags: int) -> Detections:
    """The detections that are neither static sky nor flagged artefacts."""
    keep = ~static_mask(det, radius_arcsec, min_frames) & ((det.flags & bad_flags) == 0)
    return det.subset(keep)
