"""Matching measured sources to catalogue objects on the sky, ambiguities kept rather than hidden.

Each source gets the nearest object within its radius, the separation and how many objects
were within the radius (``count`` > 1 says "ambiguous": a blend or a crowded field). The
radius is the larger of a floor and three times the combined uncertainty of the two
positions (the frame's astrometric error and the object's own, from the catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Matches:
    """Per source: the nearest object (-1: none), its separation (arcsec) and the candidates' count."""

    index: IntArray
    separation: FloatArray
    count: IntArray

    @property
    def matched(self) -> NDArray[np.bool_]:
        """Sources with an object."""
        return self.index >= 0


def match_radius(
    astrometric_err_arcsec: float, object_err_arcsec: FloatArray, floor_arcsec: float
) -> FloatArray:
    """Per object: max(floor, 3 x hypot(frame error, object error))."""
    combined = np.hypot(float(astrometric_err_arcsec), np.nan_to_num(np.asarray(object_err_arcsec, float)))
    return np.maximum(float(floor_arcsec), 3.0 * combined)


def unit_vectors(ra: FloatArray, dec: FloatArray) -> FloatArray:
    """N x 3 unit vectors of sky positions in degrees."""
    r_ra, r_dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    cos_dec = np.cos(r_dec)
    return np.column_stack([cos_dec * np.cos(r_ra), cos_dec * np.sin(r_ra), np.sin(r_dec)])


def separation_arcsec(
    ra1: FloatArray | float, dec1: FloatArray | float, ra2: FloatArray | float, dec2: FloatArray | float
) -> FloatArray:
    """Angular separations (arcsec) of position pairs, broadcast (haversine, exact at small angles)."""
    r1, d1 = np.radians(ra1), np.radians(dec1)
    r2, d2 = np.radians(ra2), np.radians(dec2)
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))) * 3600.0)


def match_sky(
    ra: FloatArray, dec: FloatArray, obj_ra: FloatArray, obj_dec: FloatArray, radius_arcsec: FloatArray
) -> Matches:
    """Match sources (ra, dec) to objects within each object's ``radius_arcsec`` (k-d tree on the sphere)."""
    from scipy.spatial import cKDTree

    n = len(ra)
    index = np.full(n, -1, dtype=np.int64)
    separation = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    radius = np.broadcast_to(np.asarray(radius_arcsec, float), (len(obj_ra),))
    good = np.isfinite(np.asarray(ra, float)) & np.isfinite(np.asarray(dec, float))
    obj_good = np.isfinite(np.asarray(obj_ra, float)) & np.isfinite(np.asarray(obj_dec, float))
    if n == 0 or not obj_good.any() or not good.any():
        return Matches(index, separation, count)
    rows = np.flatnonzero(good)
    objs = np.flatnonzero(obj_good)
    chord = 2.0 * np.sin(np.radians(float(radius[objs].max()) / 3600.0) / 2.0)
    tree = cKDTree(unit_vectors(np.asarray(obj_ra)[objs], np.asarray(obj_dec)[objs]))
    pairs = tree.query_ball_point(unit_vectors(np.asarray(ra)[rows], np.asarray(dec)[rows]), chord)
    src = np.repeat(rows, [len(p) for p in pairs])
    obj = objs[np.concatenate([np.asarray(p, dtype=np.int64) for p in pairs])] if len(src) else src
    if len(src) == 0:
        return Matches(index, separation, count)
    sep = separation_arcsec(
        np.asarray(ra)[src], np.asarray(dec)[src], np.asarray(obj_ra)[obj], np.asarray(obj_dec)[obj]
    )
    keep = sep <= radius[obj]
    src, obj, sep = src[keep], obj[keep], sep[keep]
    np.add.at(count, src, 1)
    order = np.lexsort((sep, src))  # by source, nearest first
    src, obj, sep = src[order], obj[order], sep[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = src[1:] != src[:-1]
    index[src[first]] = obj[first]
    separation[src[first]] = sep[first]
    return Matches(index, separation, count)
