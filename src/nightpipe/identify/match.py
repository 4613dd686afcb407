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


def match_sky(
    ra: FloatArray, dec: FloatArray, obj_ra: FloatArray, obj_dec: FloatArray, radius_arcsec: FloatArray
) -> Matches:
    """Match sources (ra, dec) to objects within each object's ``radius_arcsec``."""
    n = len(ra)
    index = np.full(n, -1, dtype=np.int64)
    separation = np.full(n, np.nan)
    count = np.zeros(n, dtype=np.int64)
    radius = np.broadcast_to(np.asarray(radius_arcsec, float), (len(obj_ra),))
    good = np.isfinite(ra) & np.isfinite(dec)
    if n == 0 or len(obj_ra) == 0 or not good.any():
        return Matches(index, separation, count)
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    sources = SkyCoord(np.asarray(ra)[good] * u.deg, np.asarray(dec)[good] * u.deg)
    objects = SkyCoord(np.asarray(obj_ra, float) * u.deg, np.asarray(obj_dec, float) * u.deg)
    i_src, i_obj, sep, _ = search_around_sky(sources, objects, float(radius.max()) * u.arcsec)
    sep_arcsec = sep.to_value(u.arcsec)
    keep = sep_arcsec <= radius[i_obj]
    i_src, i_obj, sep_arcsec = i_src[keep], i_obj[keep], sep_arcsec[keep]
    rows = np.flatnonzero(good)[i_src]
    np.add.at(count, rows, 1)
    order = np.lexsort((sep_arcsec, rows))  # by source, nearest first
    rows, i_obj, sep_arcsec = rows[order], i_obj[order], sep_arcsec[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    index[rows[first]] = i_obj[first]
    separation[rows[first]] = sep_arcsec[first]
    return Matches(index, separation, count)
