"""Matching two point lists: offset voting, nearest neighbours, affine fits (pure numpy).

Frames of one night differ from the reference frame mostly by a shift (tracking drift) and
perhaps a small rotation or scale change. The offset is found by voting: every pair of
bright stars (one from each list) votes for its difference, and the densest cell of the
vote histogram wins. Nearest neighbours under that offset then give matched pairs, and an
affine transform is fitted to them with sigma clipping.

A field that turns (a meridian flip, an alt-azimuth mount, a camera rotated between nights)
or is mirrored is matched by :func:`match_points_any_orientation`: the rotation is voted first,
from the directions of star pairs of equal length in both lists (lengths do not change under a
rotation or a mirror; the scale is the same telescope's), once as seen and once mirrored, then
the shift is voted on the turned list and refined as above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PointMatch:
    """Matched pairs between a list ``src`` and a list ``dst``, and the affine map src -> dst."""

    src_index: np.ndarray
    dst_index: np.ndarray
    matrix: np.ndarray  # 2 x 3: dst = M[:, :2] @ src + M[:, 2]
    rms: float

    def __len__(self) -> int:
        return int(self.src_index.size)


def vote_offset(
    src: np.ndarray, dst: np.ndarray, *, max_shift: float, cell: float = 3.0
) -> tuple[np.ndarray, int]:
    """The shift ``dst - src`` most pairs agree on, and how many pairs voted for it.

    Parameters
    ----------
    src, dst
        N x 2 and M x 2 positions (use the brightest few tens of each).
    max_shift
        Largest shift considered, in the same units.
    cell
        Histogram cell size; should exceed the position errors.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> a = rng.uniform(0, 500, (40, 2))
    >>> shift, votes = vote_offset(a, a + [120.4, -33.2], max_shift=300)
    >>> np.round(shift, 1).tolist(), votes >= 35
    ([120.4, -33.2], True)
    """
    diff = (dst[None, :, :] - src[:, None, :]).reshape(-1, 2)
    diff = diff[np.all(np.abs(diff) <= max_shift, axis=1)]
    if diff.shape[0] == 0:
        return np.zeros(2), 0
    best_count, best = 0, np.zeros(2)
    for offset in (0.0, 0.5):  # two staggered grids so that a peak on a cell edge is not split
        edges = np.arange(-max_shift - cell * (1 + offset), max_shift + 2 * cell, cell)
        hist, xe, ye = np.histogram2d(diff[:, 0], diff[:, 1], bins=[edges, edges])
        i, j = np.unravel_index(int(np.argmax(hist)), hist.shape)
        if hist[i, j] > best_count:
            best_count = int(hist[i, j])
            best = np.array([(xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2])
    near = np.all(np.abs(diff - best) <= cell, axis=1)
    return np.median(diff[near], axis=0), int(near.sum())


def nearest_pairs(src: np.ndarray, dst: np.ndarray, *, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours closer than ``radius``: index arrays into ``src`` and ``dst``."""
    if src.shape[0] == 0 or dst.shape[0] == 0:
        return np.empty(0, int), np.empty(0, int)
    from scipy.spatial import cKDTree

    d_fwd, j = cKDTree(dst).query(src, distance_upper_bound=radius)
    _, i_back = cKDTree(src).query(dst)
    ok = np.isfinite(d_fwd)
    i = np.flatnonzero(ok)
    j = j[ok]
    mutual = i_back[j] == i
    return i[mutual], j[mutual]


def fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2 x 3 affine matrix mapping ``src`` onto ``dst`` (at least 3 points)."""
    design = np.column_stack([src, np.ones(src.shape[0])])
    coeffs, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return np.asarray(coeffs.T)


def apply_affine(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine matrix to N x 2 points."""
    return np.asarray(xy @ matrix[:, :2].T + matrix[:, 2])


def match_points(
    src: np.ndarray,
    dst: np.ndarray,
    *,
    max_shift: float,
    radius: float = 3.0,
    n_vote: int = 40,
    min_matches: int = 6,
    clip: float = 3.0,
) -> PointMatch | None:
    """Match ``src`` to ``dst`` (both brightest first): vote a shift, pair up, fit an affine map.

    Returns ``None`` when fewer than ``min_matches`` pairs agree.
    """
    if src.shape[0] < 3 or dst.shape[0] < 3:
        return None
    shift, votes = vote_offset(src[:n_vote], dst[:n_vote], max_shift=max_shift, cell=max(radius, 2.0))
    if votes < 3:
        return None
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    return _pair_and_fit(src, dst, matrix, radius=radius, min_matches=min_matches, clip=clip)


def rotation_matrix(angle_deg: float, *, mirror: bool = False) -> np.ndarray:
    """2 x 2 matrix turning points by ``angle_deg`` (counter-clockwise), after ``y -> -y`` when
    ``mirror``."""
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    turn = np.array([[c, -s], [s, c]])
    return turn @ np.diag([1.0, -1.0]) if mirror else turn


def turn_angle_deg(matrix: np.ndarray) -> float:
    """The rotation (degrees, -180..180) of a 2 x 2 or 2 x 3 map (of its mirrored form if it mirrors)."""
    return float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))


def vote_rotation(
    src: np.ndarray, dst: np.ndarray, *, tolerance: float = 2.0, bin_deg: float = 1.0
) -> tuple[float, int]:
    """The angle (degrees, modulo 180) turning ``src`` onto ``dst``, and how many pairs voted for it.

    Every pair of points in ``src`` and every pair in ``dst`` whose lengths agree within
    ``tolerance`` vote for the difference of their directions. A pair has no order, so its
    direction is known modulo 180 degrees: the caller tells the angle from the angle + 180 by
    voting the shift. Pairs shorter than ``10 * tolerance`` do not vote (their direction is too
    uncertain).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = rng.uniform(0, 500, (30, 2))
    >>> angle, votes = vote_rotation(a, a @ rotation_matrix(37.0).T + [40.0, -12.0])
    >>> round(angle, 1), votes >= 100
    (37.0, True)
    """
    pa, la = _pairs(src, 10.0 * tolerance)
    pb, lb = _pairs(dst, 10.0 * tolerance)
    if la.size == 0 or lb.size == 0:
        return 0.0, 0
    ia, ib = np.nonzero(np.abs(la[:, None] - lb[None, :]) <= tolerance)
    diff = np.mod(pb[ib] - pa[ia], 180.0)
    best_count, best = 0, 0.0
    for offset in (0.0, 0.5):  # two staggered grids so that a peak on a bin edge is not split
        shifted = np.mod(diff + offset * bin_deg, 180.0)
        hist, edges = np.histogram(shifted, bins=round(180.0 / bin_deg), range=(0.0, 180.0))
        k = int(np.argmax(hist))
        if hist[k] > best_count:
            best_count, best = int(hist[k]), float(edges[k] + bin_deg / 2 - offset * bin_deg)
    wrapped = np.mod(diff - best + 90.0, 180.0) - 90.0  # votes around the peak, in -90..90
    near = np.abs(wrapped) <= bin_deg
    if not near.any():
        return float(np.mod(best, 180.0)), 0
    return float(np.mod(best + np.median(wrapped[near]), 180.0)), int(near.sum())


def _pairs(points: np.ndarray, min_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Direction (degrees) and length of every pair of ``points`` longer than ``min_length``."""
    i, j = np.triu_indices(points.shape[0], k=1)
    d = points[j] - points[i]
    length = np.hypot(d[:, 0], d[:, 1])
    keep = length >= min_length
    return np.degrees(np.arctan2(d[keep, 1], d[keep, 0])), length[keep]


def match_points_any_orientation(
    src: np.ndarray,
    dst: np.ndarray,
    *,
    radius: float = 3.0,
    n_vote: int = 30,
    min_matches: int = 6,
    clip: float = 3.0,
) -> PointMatch | None:
    """Match ``src`` to ``dst`` (both brightest first) whatever the rotation between them, mirrored
    or not (same scale within a pixel or two over the field): vote the rotation on the brightest
    ``n_vote`` of each (as seen and mirrored), then the shift for the angle and the angle + 180
    degrees, keep the best-voted, then pair up and fit an affine map as :func:`match_points`.

    Returns ``None`` when fewer than ``min_matches`` pairs agree.
    """
    if src.shape[0] < 3 or dst.shape[0] < 3:
        return None
    a, b = src[:n_vote], dst[:n_vote]
    centre = a.mean(axis=0)  # turn about the middle of the stars: angle errors move them least
    span = float(np.ptp(np.vstack([src, dst]), axis=0).max())
    best: tuple[int, np.ndarray] | None = None
    for mirror in (False, True):
        angle, count = vote_rotation(a * [1.0, -1.0] if mirror else a, b)
        if count < 3:
            continue
        for turn_deg in (angle, angle + 180.0):
            turn = rotation_matrix(turn_deg, mirror=mirror)
            turned = (a - centre) @ turn.T
            shift, votes = vote_offset(turned, b, max_shift=1.5 * span + 1.0, cell=max(radius, 2.0))
            if votes >= 3 and (best is None or votes > best[0]):
                best = (votes, np.column_stack([turn, shift - turn @ centre]))
    if best is None:
        return None
    return _pair_and_fit(src, dst, best[1], radius=radius, min_matches=min_matches, clip=clip)


def _pair_and_fit(
    src: np.ndarray, dst: np.ndarray, matrix: np.ndarray, *, radius: float, min_matches: int, clip: float
) -> PointMatch | None:
    """From a first affine map: nearest pairs, affine fit, clipping (four rounds at most)."""
    i = j = np.empty(0, int)
    rms = np.inf
    for _ in range(4):
        i, j = nearest_pairs(apply_affine(matrix, src), dst, radius=radius)
        if i.size < max(min_matches, 3):
            return None
        matrix = fit_affine(src[i], dst[j])
        resid = np.hypot(*(apply_affine(matrix, src[i]) - dst[j]).T)
        rms = float(np.sqrt(np.mean(resid**2)))
        keep = resid <= max(clip * rms, 0.5)
        if keep.all():
            break
        i, j = i[keep], j[keep]
        matrix = fit_affine(src[i], dst[j])
    if i.size < min_matches:
        return None
    return PointMatch(i, j, matrix, rms)
