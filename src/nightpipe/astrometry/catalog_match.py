"""Solving a frame by matching its stars straight to the catalogue stars of the hinted field.

The installed index files may not cover a small field: Debian's Tycho-2 files start at 22'
quads, so a 10' field (a long focal length, a small sensor) gives ``solve-field`` nothing to
find. When the header (or the settings) give a position and a pixel scale, the catalogue stars
around that position are projected onto a nominal tangent plane (north up, the hinted scale)
and the detected stars are matched to them by triangles: the shape of a triangle of stars (the
ratios of its sides) does not change under a shift, a rotation, a mirror or a change of scale,
so every pair of similar triangles votes for a rotation, a parity and a scale, and the best-
voted ones (within the hint's scale tolerance) are tried: a shift vote, nearest pairs and an
affine fit as in :mod:`nightpipe.astrometry.match`. The pairs give a first WCS, which is refined
and checked on the catalogue stars like any other solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightpipe.astrometry.fitting import tan_project
from nightpipe.astrometry.index_catalog import RefStars
from nightpipe.astrometry.match import PointMatch, _pair_and_fit, vote_offset

ANGLE_BIN_DEG = 2.0
LOG_SCALE_BIN = 0.01
INVARIANT_TOLERANCE = 0.015
MIN_SIDE_PX = 15.0  # triangles smaller than this do not vote: their angles are too uncertain


@dataclass(frozen=True)
class _Triangles:
    """Every triangle of a point list: vertex indices (ordered by the opposite side, shortest
    first), shape invariants (shortest/longest, middle/longest) and orientation sign."""

    vertices: np.ndarray  # T x 3
    invariants: np.ndarray  # T x 2
    orientation: np.ndarray  # T


def _triangles(points: np.ndarray) -> _Triangles:
    n = points.shape[0]
    if n < 3:
        return _Triangles(np.empty((0, 3), int), np.empty((0, 2)), np.empty(0))
    i, j, k = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"))
    keep = (i < j) & (j < k)
    tri = np.column_stack([i[keep], j[keep], k[keep]])
    p = points[tri]  # T x 3 x 2
    # side opposite vertex m joins the two other vertices
    sides = np.stack(
        [
            np.hypot(*(p[:, 2] - p[:, 1]).T),
            np.hypot(*(p[:, 2] - p[:, 0]).T),
            np.hypot(*(p[:, 1] - p[:, 0]).T),
        ],
        axis=1,
    )
    order = np.argsort(sides, axis=1)
    sides = np.take_along_axis(sides, order, axis=1)
    tri = np.take_along_axis(tri, order, axis=1)
    ok = (sides[:, 0] >= MIN_SIDE_PX) & (sides[:, 2] > 0)
    tri, sides = tri[ok], sides[ok]
    q = points[tri]
    cross = (q[:, 1, 0] - q[:, 0, 0]) * (q[:, 2, 1] - q[:, 0, 1]) - (q[:, 1, 1] - q[:, 0, 1]) * (
        q[:, 2, 0] - q[:, 0, 0]
    )
    invariants = np.column_stack([sides[:, 0] / sides[:, 2], sides[:, 1] / sides[:, 2]])
    return _Triangles(tri, invariants, np.sign(cross))


def _similarity(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation angle (degrees) and scale of the similarities taking each triangle ``p`` (T x 3 x 2)
    onto ``q``, in the least-squares sense about the centroids."""
    zp = (p[..., 0] - p[..., 0].mean(axis=1, keepdims=True)) + 1j * (
        p[..., 1] - p[..., 1].mean(axis=1, keepdims=True)
    )
    zq = (q[..., 0] - q[..., 0].mean(axis=1, keepdims=True)) + 1j * (
        q[..., 1] - q[..., 1].mean(axis=1, keepdims=True)
    )
    z = np.sum(zq * np.conj(zp), axis=1)
    return np.degrees(np.angle(z)), np.abs(z) / np.sum(np.abs(zp) ** 2, axis=1)


def _candidates(
    src: np.ndarray, dst: np.ndarray, *, scale_lo: float, scale_hi: float, n_best: int
) -> list[np.ndarray]:
    """The best-voted similarities (2 x 2 matrices) taking ``src`` onto ``dst``, most votes first."""
    from scipy.spatial import cKDTree

    ts, td = _triangles(src), _triangles(dst)
    if ts.vertices.shape[0] == 0 or td.vertices.shape[0] == 0:
        return []
    pairs = cKDTree(td.invariants).query_ball_point(ts.invariants, r=INVARIANT_TOLERANCE)
    si = np.repeat(np.arange(len(pairs)), [len(p) for p in pairs])
    di = np.fromiter((d for p in pairs for d in p), dtype=int, count=si.size)
    if si.size == 0:
        return []
    mirror = ts.orientation[si] != td.orientation[di]
    p = src[ts.vertices[si]]
    p = np.where(mirror[:, None, None], p * np.array([1.0, -1.0]), p)
    angle, scale = _similarity(p, dst[td.vertices[di]])
    log_scale = np.log(scale)
    inside = (scale >= scale_lo) & (scale <= scale_hi)
    found: list[tuple[int, np.ndarray]] = []
    for parity in (False, True):
        sel = inside & (mirror == parity)
        if sel.sum() < 2:
            continue
        a, s = np.mod(angle[sel], 360.0), log_scale[sel]
        n_a = round(360.0 / ANGLE_BIN_DEG)
        n_s = max(1, int(np.ceil((np.log(scale_hi) - np.log(scale_lo)) / LOG_SCALE_BIN)))
        hist, _, _ = np.histogram2d(
            a, s, bins=[n_a, n_s], range=[[0, 360], [np.log(scale_lo), np.log(scale_hi)]]
        )
        for flat in np.argsort(hist, axis=None)[::-1][:n_best]:
            ia, js = np.unravel_index(int(flat), hist.shape)
            if hist[ia, js] < 2:
                break
            a0 = (ia + 0.5) * ANGLE_BIN_DEG
            s0 = np.log(scale_lo) + (js + 0.5) * LOG_SCALE_BIN
            da = np.mod(a - a0 + 180.0, 360.0) - 180.0
            near = (np.abs(da) <= 1.5 * ANGLE_BIN_DEG) & (np.abs(s - s0) <= 1.5 * LOG_SCALE_BIN)
            turn = np.radians(a0 + np.median(da[near]))
            factor = float(np.exp(np.median(s[near])))
            c, sn = np.cos(turn), np.sin(turn)
            matrix = factor * np.array([[c, -sn], [sn, c]])
            if parity:
                matrix = matrix @ np.diag([1.0, -1.0])
            found.append((int(near.sum()), matrix))
    found.sort(key=lambda item: -item[0])
    return [m for _, m in found]


def triangle_match(
    src: np.ndarray,
    dst: np.ndarray,
    *,
    scale_lo: float,
    scale_hi: float,
    radius: float = 4.0,
    n_src: int = 20,
    n_dst: int = 30,
    min_matches: int = 6,
    n_best: int = 4,
) -> PointMatch | None:
    """Match point lists (brightest first) related by any rotation, mirror or not, a shift and a
    scale ``dst / src`` within ``[scale_lo, scale_hi]``; the match with the most pairs, or ``None``.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> a = rng.uniform(0, 600, (25, 2))
    >>> turn = np.radians(123.0)
    >>> m = 1.04 * np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    >>> b = a @ m.T + [30.0, -50.0]
    >>> match = triangle_match(a, b, scale_lo=0.9, scale_hi=1.1)
    >>> len(match), bool(np.allclose(match.matrix[:, :2], m, atol=1e-6))
    (25, True)
    """
    a, b = src[:n_src], dst[:n_dst]
    best: PointMatch | None = None
    span = float(np.ptp(np.vstack([src, dst]), axis=0).max()) if src.size and dst.size else 0.0
    for matrix in _candidates(a, b, scale_lo=scale_lo, scale_hi=scale_hi, n_best=n_best):
        turned = a @ matrix.T
        shift, votes = vote_offset(turned, b, max_shift=2.0 * span + 1.0, cell=max(radius, 2.0))
        if votes < 3:
            continue
        match = _pair_and_fit(
            src, dst, np.column_stack([matrix, shift]), radius=radius, min_matches=min_matches, clip=3.0
        )
        if match is not None and (best is None or len(match) > len(best)):
            best = match
    return best


def nominal_pixels(refs: RefStars, ra: float, dec: float, scale_arcsec: float) -> np.ndarray:
    """Catalogue positions on a nominal detector at (ra, dec): north up, east left, the hinted
    scale (pixels from the pointing; the frame's real orientation is what the match finds)."""
    xi, eta = tan_project(refs.ra, refs.dec, ra, dec)
    per_px = scale_arcsec / 3600.0
    return np.column_stack([-xi / per_px, eta / per_px])


__all__ = ["nominal_pixels", "triangle_match"]
