"""Identify the same stars across the frames of a night from their per-frame source tables.

Stars are matched by sky coordinates when a frame has a WCS (``ra``/``dec`` finite), within a
radius of 1.5 pixels (the pixel scale is measured from the reference table itself), so that
they are followed through a meridian flip or a field rotation. Frames without a WCS fall back to
pixels: the translation to the reference frame is found by voting over the offsets between
bright stars (robust to drifts of hundreds of pixels) or, when that fails, any rotation and a
mirror (:func:`nightpipe.astrometry.match.match_points_any_orientation`); stars are then paired
by nearest neighbour within 3 pixels. Every frame's affine map onto the reference frame's pixels
is then fitted to its matched stars: it gives the field's rotation (and mirroring) frame by frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from nightpipe.astrometry.match import apply_affine, fit_affine, match_points_any_orientation
from nightpipe.errors import TimeseriesError

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class StarMatrix:
    """Which row of each frame's table is each reference star.

    Attributes
    ----------
    index
        F x S row indices (-1 where the star was not found in that frame).
    ref_frame
        The frame whose stars define the list.
    ref_x, ref_y, ref_ra, ref_dec
        Positions of the S stars in the reference frame.
    method
        Per frame: ``"sky"``, ``"pixel"`` or ``"failed"``.
    offsets
        Per frame: (dx, dy) of the frame relative to the reference (pixels; NaN when unknown),
        the median over matched stars: the pointing drift of a field that does not turn.
    transforms
        Per frame: the 2 x 3 affine map of its pixels onto the reference frame's, fitted to the
        matched stars (NaN with fewer than 3).
    """

    index: IntArray
    ref_frame: int
    ref_x: FloatArray
    ref_y: FloatArray
    ref_ra: FloatArray
    ref_dec: FloatArray
    method: tuple[str, ...]
    offsets: FloatArray
    transforms: FloatArray

    @property
    def n_stars(self) -> int:
        """Number of reference stars."""
        return int(self.index.shape[1])

    def presence(self) -> FloatArray:
        """Fraction of frames in which each star was found."""
        return np.asarray((self.index >= 0).mean(axis=0), dtype=np.float64)

    def gather(self, tables: Sequence[Table], column: str) -> FloatArray:
        """Values of ``column`` per frame and star (F x S, or F x S x K for 2-D columns), NaN if missing."""
        first = np.asarray(tables[self.ref_frame][column], dtype=np.float64)
        shape = (len(tables), self.n_stars, *first.shape[1:])
        out = np.full(shape, np.nan)
        for f, table in enumerate(tables):
            rows = self.index[f]
            ok = rows >= 0
            if ok.any():
                values = np.asarray(table[column], dtype=np.float64)
                if values.shape[1:] != first.shape[1:]:
                    raise TimeseriesError(
                        f"column {column!r} has shape {values.shape[1:]} per source in frame "
                        f"{table.meta.get('frame', f)}, {first.shape[1:]} in the reference frame",
                        hint="measure every frame with the same aperture radii",
                    )
                out[f, ok] = values[rows[ok]]
        return out

    def rotation_deg(self) -> FloatArray:
        """Per frame, the angle (degrees, -180..180) that turns its pixel axes onto the reference
        frame's: 0 for a drifting field, +-180 after a meridian flip, a slow change under an
        alt-azimuth mount's field rotation; NaN when unknown."""
        t = self.transforms
        return np.asarray(np.degrees(np.arctan2(t[:, 1, 0], t[:, 0, 0])), dtype=np.float64)

    def mirrored(self) -> NDArray[np.bool_]:
        """Per frame, True when its image is mirrored relative to the reference frame's."""
        t = self.transforms
        return np.asarray(t[:, 0, 0] * t[:, 1, 1] - t[:, 0, 1] * t[:, 1, 0] < 0)

    def find(self, ra: float, dec: float, *, radius_arcsec: float = 10.0) -> int | None:
        """The reference star nearest (ra, dec) within ``radius_arcsec``, or None."""
        if not np.any(np.isfinite(self.ref_ra)):
            return None
        sep = angular_separation_arcsec(ra, dec, self.ref_ra, self.ref_dec)
        best = int(np.nanargmin(sep))
        return best if sep[best] <= radius_arcsec else None


def angular_separation_arcsec(ra: float, dec: float, ras: FloatArray, decs: FloatArray) -> FloatArray:
    """Great-circle separation (haversine), arcseconds, from one point to many (degrees in)."""
    r1, d1 = math.radians(ra), math.radians(dec)
    r2, d2 = np.radians(ras), np.radians(decs)
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0, dtype=np.float64)


def _unit_vectors(ra: FloatArray, dec: FloatArray) -> FloatArray:
    r, d = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])


def pixel_scale_arcsec(table: Table) -> float | None:
    """Pixel scale (arcsec/px) from a table's x, y, ra, dec by a linear fit; None without a WCS."""
    ra, dec = np.asarray(table["ra"], float), np.asarray(table["dec"], float)
    x, y = np.asarray(table["x"], float), np.asarray(table["y"], float)
    ok = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return None
    dec0 = float(np.median(dec[ok]))
    ra0 = float(np.median(ra[ok]))
    xi = (ra[ok] - ra0) * math.cos(math.radians(dec0)) * 3600.0
    eta = (dec[ok] - dec0) * 3600.0
    A = np.column_stack([np.ones(ok.sum()), x[ok], y[ok]])
    cx, *_ = np.linalg.lstsq(A, xi, rcond=None)
    cy, *_ = np.linalg.lstsq(A, eta, rcond=None)
    det = abs(cx[1] * cy[2] - cx[2] * cy[1])
    return math.sqrt(det) if det > 0 else None


def has_wcs(table: Table) -> bool:
    """True when most sources of the table have finite sky coordinates."""
    if "ra" not in table.colnames or len(table) == 0:
        return False
    return bool(np.isfinite(np.asarray(table["ra"], float)).mean() > 0.5)


def _brightness(table: Table) -> FloatArray:
    for column in ("aper_flux", "peak", "flux"):
        if column in table.colnames:
            values = np.asarray(table[column], dtype=np.float64)
            if values.ndim == 2:
                values = values[:, values.shape[1] // 2]
            return np.nan_to_num(values, nan=-np.inf)
    return np.zeros(len(table))


def pixel_offset(
    ref_xy: FloatArray, xy: FloatArray, *, n_bright: int = 40, bin_px: float = 2.0
) -> tuple[float, float] | None:
    """Translation (dx, dy) taking reference positions onto a frame's, by voting; None if unclear.

    Both arrays are assumed sorted brightest first. Every pair (reference star, frame star)
    votes for its offset on a ``bin_px`` grid; the peak must gather at least 3 votes and
    twice the runner-up, then it is refined by the median offset of the pairs in the peak.
    """
    a = ref_xy[:n_bright]
    b = xy[:n_bright]
    if len(a) < 3 or len(b) < 3:
        return None
    d = (b[None, :, :] - a[:, None, :]).reshape(-1, 2)
    keys = np.floor(d / bin_px).astype(np.int64)
    uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    # add the neighbouring bins so that an offset on a bin edge is not split
    lookup = {tuple(k): c for k, c in zip(uniq.tolist(), counts.tolist(), strict=True)}
    smooth = np.array(
        [
            sum(lookup.get((k[0] + i, k[1] + j), 0) for i in (-1, 0, 1) for j in (-1, 0, 1))
            for k in uniq.tolist()
        ]
    )
    order = np.argsort(smooth)[::-1]
    top = smooth[order[0]]
    if top < 3:
        return None
    peak = uniq[order[0]]
    near = np.all(np.abs(keys - peak) <= 1, axis=1)
    runner = next((smooth[i] for i in order[1:] if np.any(np.abs(uniq[i] - peak) > 2)), 0)
    if top < 2 * runner:
        return None
    dx, dy = np.median(d[near], axis=0)
    return float(dx), float(dy)


def crossmatch(
    tables: Sequence[Table],
    *,
    ref_frame: int | None = None,
    radius_px: float = 1.5,
    pixel_radius_px: float = 3.0,
) -> StarMatrix:
    """Match the stars of every frame to those of a reference frame (rules in the module doc).

    Parameters
    ----------
    tables
        Source tables of the night (``x``, ``y``, ``ra``, ``dec`` columns), in time order.
    ref_frame
        The reference frame; by default the frame with the most sources among the solved frames
        of the middle half of the night (any solved frame, else any frame of the middle half).
    radius_px, pixel_radius_px
        Matching radii for sky (in pixels, converted with the measured scale) and pixel matching.

    Raises
    ------
    TimeseriesError
        When there is no table or the reference frame has no sources.
    """
    if not tables:
        raise TimeseriesError("no source tables to match", hint="run the photometry step first")
    n = len(tables)
    if ref_frame is None:  # most sources in the middle half of the night, a frame with a WCS if any
        lo, hi = n // 4, max(n // 4 + 1, 3 * n // 4)
        solved = [has_wcs(t) for t in tables]
        candidates = [i for i in range(lo, hi) if solved[i]] or [i for i in range(n) if solved[i]]
        candidates = candidates or list(range(lo, hi))
        ref_frame = max(candidates, key=lambda i: len(tables[i]))
    ref = tables[ref_frame]
    if len(ref) == 0:
        raise TimeseriesError(f"reference frame {ref.meta.get('frame', ref_frame)} has no sources")
    order = np.argsort(-_brightness(ref), kind="stable")
    ref = ref[order]
    ref_x = np.asarray(ref["x"], float)
    ref_y = np.asarray(ref["y"], float)
    ref_ra = np.asarray(ref["ra"], float) if "ra" in ref.colnames else np.full(len(ref), np.nan)
    ref_dec = np.asarray(ref["dec"], float) if "dec" in ref.colnames else np.full(len(ref), np.nan)
    ref_sky = has_wcs(ref)
    scale = pixel_scale_arcsec(ref) if ref_sky else None
    sky_tree = cKDTree(_unit_vectors(ref_ra, ref_dec)) if ref_sky and scale else None
    sky_radius = math.radians((radius_px * scale if scale else 0) / 3600.0)
    ref_xy = np.column_stack([ref_x, ref_y])
    pix_tree = cKDTree(ref_xy)

    index = np.full((n, len(ref)), -1, dtype=np.int64)
    methods: list[str] = []
    offsets = np.full((n, 2), np.nan)
    transforms = np.full((n, 2, 3), np.nan)
    for f, table in enumerate(tables):
        if len(table) == 0:
            methods.append("failed")
            continue
        x = np.asarray(table["x"], float)
        y = np.asarray(table["y"], float)
        if sky_tree is not None and has_wcs(table):
            ra = np.asarray(table["ra"], float)
            dec = np.asarray(table["dec"], float)
            ok = np.isfinite(ra) & np.isfinite(dec)
            dist, nearest = sky_tree.query(_unit_vectors(ra[ok], dec[ok]), distance_upper_bound=sky_radius)
            rows = np.flatnonzero(ok)
            _assign(index[f], rows, nearest, dist, len(ref))
            methods.append("sky")
        else:
            to_ref = _pixel_map(
                ref_xy, np.column_stack([x, y])[np.argsort(-_brightness(table), kind="stable")]
            )
            if to_ref is None:
                log.warning("frame %s: no pixel offset to the reference found", table.meta.get("frame", f))
                methods.append("failed")
                continue
            dist, nearest = pix_tree.query(
                apply_affine(to_ref, np.column_stack([x, y])), distance_upper_bound=pixel_radius_px
            )
            _assign(index[f], np.arange(len(table)), nearest, dist, len(ref))
            methods.append("pixel")
        found = index[f] >= 0
        if found.any():
            dx = np.median(x[index[f][found]] - ref_x[found])
            dy = np.median(y[index[f][found]] - ref_y[found])
            offsets[f] = (dx, dy)
        if found.sum() >= 3:
            frame_xy = np.column_stack([x[index[f][found]], y[index[f][found]]])
            transforms[f] = fit_affine(frame_xy, ref_xy[found])
    log.info(
        "matched %d stars over %d frames (reference %s): %d by sky, %d by pixels, %d failed",
        len(ref),
        n,
        ref.meta.get("frame", ref_frame),
        methods.count("sky"),
        methods.count("pixel"),
        methods.count("failed"),
    )
    return StarMatrix(index, ref_frame, ref_x, ref_y, ref_ra, ref_dec, tuple(methods), offsets, transforms)


def _pixel_map(ref_xy: FloatArray, xy: FloatArray, radius: float = 3.0) -> FloatArray | None:
    """The affine map of a frame's pixels (``xy``, brightest first) onto the reference's: the voted
    translation when it pairs up at least 30 % of the bright stars, else the map of any rotation
    or mirror when it pairs more; None when neither is clear."""
    bright, ref_bright = xy[:150], ref_xy[:150]
    tree = cKDTree(ref_bright)

    def pairs(matrix: FloatArray) -> int:
        dist, _ = tree.query(apply_affine(matrix, bright), distance_upper_bound=radius)
        return int(np.isfinite(dist).sum())

    offset = pixel_offset(ref_xy, xy)
    shift = None if offset is None else np.array([[1.0, 0.0, -offset[0]], [0.0, 1.0, -offset[1]]])
    if shift is not None and pairs(shift) >= 0.3 * min(len(bright), len(ref_bright)):
        return shift
    match = match_points_any_orientation(bright, ref_bright, radius=radius)
    turned = None if match is None else np.asarray(match.matrix, dtype=np.float64)
    if turned is None or (shift is not None and pairs(shift) >= pairs(turned)):
        return shift
    return turned


def _assign(row: IntArray, rows: IntArray, nearest: IntArray, dist: FloatArray, n_ref: int) -> None:
    """Keep, for each reference star, the closest frame source (unique pairs)."""
    ok = np.isfinite(dist) & (nearest < n_ref)
    best = np.full(n_ref, np.inf)
    for r, k, d in zip(rows[ok], nearest[ok], dist[ok], strict=True):
        if d < best[k]:
            best[k] = d
            row[k] = r
