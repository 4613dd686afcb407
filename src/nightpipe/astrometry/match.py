"""Matching two point lists: offset voting, nearest neighbours, affine fits (pure numpy).

Frames of one night differ from the reference frame mostly by a shift (tracking drift) and
perhaps a small rotation or scale change. The offset is found by voting: every pair of
bright stars (one from each list) votes for its difference, and the densest cell of the
vote histogram wins. Nearest neighbours under that offset then give matched pairs, and an
affine transform is fitted to them with sigma clipping.
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
