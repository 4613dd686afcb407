"""The compiled inner loops of synthetic tracking (shift-and-stack), behind a small kernel interface.

A search is two passes over a tile of the registered, static-subtracted, matched-filtered frames:

1. :meth:`StackKernel.partial_sums`: partial stacks of groups of consecutive frames, one per
   distinct set of within-group integer shifts (many velocities share one: over a short group
   they round to the same shifts);
2. :meth:`StackKernel.combine_max`: for every velocity, the sum of its groups' partial stacks,
   each shifted by the group's offset, kept where it is the best so far (a max-projection map
   and the index of the velocity that gave it).

The coarse-to-fine search (:mod:`nightpipe.movers.coarse_fine`) runs these on binned frames, then
:meth:`StackKernel.block_max`: the plain stack of small blocks of pixels at a few velocities each.

:class:`NumbaKernel` runs them on the CPU (numba, ``parallel``, ``nogil``); a GPU kernel (CuPy,
numba.cuda) only has to implement the same three methods on the same arrays.
"""

from __future__ import annotations

from typing import Protocol

import numba
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
I32 = NDArray[np.int32]


class StackKernel(Protocol):
    """What a shift-and-stack back-end provides (arrays in, arrays out; no Python per pixel)."""

    def partial_sums(self, tile: F32, members: I64, shifts: I64) -> F32:
        """``out[p, y, x] = sum_k tile[members[p, k], y + shifts[p, k, 0], x + shifts[p, k, 1]]``.

        ``tile`` is (frames, H, W); ``members`` (P, M) frame indices, -1 for none; reads outside
        the tile count as 0. Returns (P, H, W) float32.
        """
        ...

    def combine_max(
        self, partials: F32, index: I64, offsets: I64, margin: int, best: F32, which: I32
    ) -> None:
        """For each velocity ``v``: ``S = sum_g partials[index[v, g], y + offsets[v, g, 0], x + ...]``
        on the core ``[margin, H - margin)`` of the tile; where ``S > best``, ``best = S`` and
        ``which = v`` (``best`` and ``which`` are the core's shape, updated in place)."""
        ...

    def block_max(self, cube: F32, origins: I64, candidates: I64, shifts: I64, block: int) -> tuple[F32, I32]:
        """For each block ``k`` (pixels ``origins[k] + [0, block)`` on each axis) and each velocity
        ``v`` of ``candidates[k]`` (-1 for none): ``S = sum_f cube[f, y + shifts[v, f, 0], x + ...]``
        (reads outside the cube count as 0); returns the largest ``S`` per pixel (K, block, block)
        and its velocity (-1 if none)."""
        ...


@numba.njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _partial_sums(tile: F32, members: I64, shifts: I64) -> F32:  # pragma: no cover - compiled
    n_part, n_mem = members.shape
    height, width = tile.shape[1], tile.shape[2]
    out = np.zeros((n_part, height, width), dtype=np.float32)
    for p in numba.prange(n_part):
        for k in range(n_mem):
            f = members[p, k]
            if f < 0:
                continue
            sy, sx = shifts[p, k, 0], shifts[p, k, 1]
            y_lo, y_hi = max(0, -sy), min(height, height - sy)
            x_lo, x_hi = max(0, -sx), min(width, width - sx)
            for y in range(y_lo, y_hi):
                for x in range(x_lo, x_hi):
                    out[p, y, x] += tile[f, y + sy, x + sx]
    return out


@numba.njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _combine_max(
    partials: F32, index: I64, offsets: I64, margin: int, best: F32, which: I32
) -> None:  # pragma: no cover - compiled
    n_vel, n_grp = index.shape
    core_h, core_w = best.shape
    for r in numba.prange(core_h):
        acc = np.empty(core_w, dtype=np.float32)
        y = r + margin
        for v in range(n_vel):
            p0 = index[v, 0]
            oy, ox = offsets[v, 0, 0], offsets[v, 0, 1]
            for c in range(core_w):
                acc[c] = partials[p0, y + oy, c + margin + ox]
            for g in range(1, n_grp):
                p = index[v, g]
                oy, ox = offsets[v, g, 0], offsets[v, g, 1]
                for c in range(core_w):
                    acc[c] += partials[p, y + oy, c + margin + ox]
            for c in range(core_w):
                if acc[c] > best[r, c]:
                    best[r, c] = acc[c]
                    which[r, c] = v


@numba.njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _block_max(
    cube: F32, origins: I64, candidates: I64, shifts: I64, block: int
) -> tuple[F32, I32]:  # pragma: no cover - compiled
    n, height, width = cube.shape
    n_blk, n_cand = candidates.shape
    best = np.full((n_blk, block, block), -np.inf, dtype=np.float32)
    which = np.full((n_blk, block, block), -1, dtype=np.int32)
    for k in numba.prange(n_blk):
        acc = np.zeros((block, block), dtype=np.float32)
        y0, x0 = origins[k, 0], origins[k, 1]
        for c in range(n_cand):
            v = candidates[k, c]
            if v < 0:
                continue
            acc[:] = 0.0
            for f in range(n):
                sy, sx = shifts[v, f, 0], shifts[v, f, 1]
                for by in range(block):
                    yy = y0 + by + sy
                    if yy < 0 or yy >= height:
                        continue
                    for bx in range(block):
                        xx = x0 + bx + sx
                        if 0 <= xx < width:
                            acc[by, bx] += cube[f, yy, xx]
            for by in range(block):
                for bx in range(block):
                    if acc[by, bx] > best[k, by, bx]:
                        best[k, by, bx] = acc[by, bx]
                        which[k, by, bx] = v
    return best, which


class NumbaKernel:
    """The CPU back-end: numba, parallel over partial stacks and over rows, the GIL released."""

    def partial_sums(self, tile: F32, members: I64, shifts: I64) -> F32:
        """See :meth:`StackKernel.partial_sums`."""
        return _partial_sums(np.ascontiguousarray(tile, dtype=np.float32), members, shifts)

    def combine_max(
        self, partials: F32, index: I64, offsets: I64, margin: int, best: F32, which: I32
    ) -> None:
        """See :meth:`StackKernel.combine_max`."""
        _combine_max(partials, index, offsets, margin, best, which)

    def block_max(self, cube: F32, origins: I64, candidates: I64, shifts: I64, block: int) -> tuple[F32, I32]:
        """See :meth:`StackKernel.block_max`."""
        return _block_max(
            np.ascontiguousarray(cube, dtype=np.float32),
            np.ascontiguousarray(origins, dtype=np.int64),
            np.ascontiguousarray(candidates, dtype=np.int64),
            np.ascontiguousarray(shifts, dtype=np.int64),
            int(block),
        )


def stack_reference(tile: F32, shifts: I64) -> F32:
    """The plain shift-and-stack of every frame at one velocity (``shifts`` (frames, 2)), in numpy:
    what the two passes must reproduce (used by the tests)."""
    n, height, width = tile.shape
    out = np.zeros((height, width), dtype=np.float64)
    for f in range(n):
        sy, sx = int(shifts[f, 0]), int(shifts[f, 1])
        y_lo, y_hi = max(0, -sy), min(height, height - sy)
        x_lo, x_hi = max(0, -sx), min(width, width - sx)
        out[y_lo:y_hi, x_lo:x_hi] += tile[f, y_lo + sy : y_hi + sy, x_lo + sx : x_hi + sx]
    return out.astype(np.float32)
