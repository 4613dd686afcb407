"""Coarse-to-fine synthetic tracking: the velocity grid searched on frames binned 2x2, then the full
resolution stack computed only where the coarse one came near the threshold.

A PSF of FWHM >= 3 px is sampled twice over by 2x2 bins, so a mover keeps most of its SNR in the
binned, matched-filtered frames; there a velocity step of 1 binned pixel over the night (2 px at
full resolution) is enough. The coarse search thus costs about 1/16 of the full one (a quarter of
the pixels, a quarter of the velocities). Every binned pixel whose coarse stack SNR reaches
``fraction * threshold`` is then refined: the full-resolution stacks of its 2x2 pixels and a ring of
one pixel around them, at the full grid's velocities within ``reach`` steps of the coarse best one,
with the frame shifts of the full plan (so a refined value is the one :func:`synthetic.search`
gives for that pixel and velocity). Above the threshold the map is then the full search's map
wherever the coarse stage lost less than ``1 - fraction`` of a peak's SNR and the best velocity
is within ``reach`` steps of the coarse one, as it is for a mover (measured in
``benchmarks/bench_shift_stack.py`` and the tests); elsewhere it holds the coarse SNR, which is
below ``fraction * threshold``. Not so for what is not a mover (star residuals, artefacts): their
best velocity can be far from the coarse one, the refined value is then lower than the full
search's (never higher). A tile where more than ``dense`` of the bins need refining (a field of
residuals) is searched in full instead, so there the map is the full search's exactly.
"""

from __future__ import annotations

import logging
import math
import time

import numba
import numpy as np
from numpy.typing import NDArray

from nightpipe.movers.stack_kernels import NumbaKernel, StackKernel
from nightpipe.movers.synthetic import SearchResult, StackPlan, best_plan, search, search_tile

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I32 = NDArray[np.int32]

DENSE_TILE = 128  # full-resolution side of the tiles searched in full when crowded with candidates
MIN_FWHM_PX = 3.0  # below it a 2x2 bin undersamples the PSF: the coarse stage would lose too much


def lattice(velocities: F64) -> tuple[I64, float] | None:
    """The velocities as integer steps of a square lattice (V, 2) and its step, or None if they are not
    on one (then only the full search applies)."""
    if len(velocities) < 2:
        return None
    values = np.unique(np.round(np.abs(velocities.ravel()), 12))
    steps = np.diff(values)
    steps = steps[steps > 1e-12 * max(1.0, float(values.max()))]
    if steps.size == 0:
        return None
    dv = float(steps.min())
    idx = np.rint(velocities / dv)
    if not np.allclose(idx * dv, velocities, rtol=0, atol=1e-6 * dv):
        return None
    return idx.astype(np.int64), dv


def coarse_lattice(idx: I64) -> I64:
    """Even lattice points (both indices) within one step (per axis) of a velocity of the grid: every
    grid velocity then has a coarse one at most one step away on each axis."""
    near = (idx[:, None, :] + np.array([[dy, dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])[None]).reshape(
        -1, 2
    )
    even = near[(near % 2 == 0).all(axis=1)]
    return np.unique(even, axis=0)


def frame_shifts(plan: StackPlan) -> I64:
    """(V, frames, 2): the integer shift of every frame for every velocity of the plan (the two passes'
    within-group shift plus the group's offset)."""
    n_vel, n_grp = plan.index.shape
    out = np.zeros((n_vel, plan.times.size, 2), dtype=np.int64)
    rows = np.arange(n_vel)[:, None]
    for g in range(n_grp):
        part = plan.index[:, g]
        members = plan.members[part]  # (V, M)
        total = plan.shifts[part] + plan.offsets[:, g, None, :]  # (V, M, 2)
        used = members >= 0
        out[np.broadcast_to(rows, members.shape)[used], members[used]] = total[used]
    return out


@numba.njit(parallel=True, nogil=True, cache=True, fastmath=True)
def _bin2(cube: F32) -> F32:  # pragma: no cover - compiled
    n, height, width = cube.shape
    h2, w2 = (height + 1) // 2, (width + 1) // 2
    out = np.zeros((n, h2, w2), dtype=np.float32)
    for r in numba.prange(n * h2):
        k, yb = r // h2, r % h2
        for y in range(2 * yb, min(2 * yb + 2, height)):
            for x in range(width):
                out[k, yb, x // 2] += cube[k, y, x]
    return out


def bin2(cube: F32, *, sample: int = 50_000) -> F32:
    """Each frame summed over 2x2 bins (an odd last row or column padded with 0) and divided by its
    robust (MAD) noise (of a regular sample of ``sample`` bins): a (frames, ceil(H/2), ceil(W/2))
    float32 cube of unit noise."""
    out = _bin2(np.ascontiguousarray(cube, dtype=np.float32))
    for k in range(out.shape[0]):
        values = out[k].ravel()
        pick = values[:: max(1, values.size // sample)]
        noise = 1.4826 * float(np.median(np.abs(pick - np.median(pick))))
        out[k] *= np.float32(1.0 / noise) if noise > 0 else np.float32(0.0)
    return out


def search_coarse_fine(
    cube: F32,
    plan: StackPlan,
    threshold: float,
    *,
    fraction: float = 0.6,
    reach: int = 3,
    dense: float = 0.3,
    kernel: StackKernel | None = None,
    tile: int = 256,
) -> SearchResult:
    """The coarse-to-fine search of a prepared cube (see the module): a :class:`SearchResult` on the
    full grid whose map equals :func:`synthetic.search`'s near every peak above ``threshold``. Falls
    back to the full search when the plan's velocities are not on a lattice."""
    back_end = kernel or NumbaKernel()
    grid = lattice(plan.velocities)
    if grid is None:
        return search(cube, plan, kernel=back_end, tile=tile)
    idx, dv = grid
    n, height, width = cube.shape
    start = time.perf_counter()
    coarse_idx = coarse_lattice(idx)
    coarse_plan = best_plan(plan.times, (coarse_idx * (dv / 2.0)).astype(np.float64))  # binned pixels per day
    coarse = search(bin2(cube), coarse_plan, kernel=back_end, tile=tile)
    # the grid velocity nearest each coarse one (unrefined pixels), and a lookup lattice -> grid index
    lo = idx.min(axis=0) - 2 * reach - 2
    table = np.full(tuple(idx.max(axis=0) - lo + 2 * reach + 3), -1, dtype=np.int64)
    table[idx[:, 0] - lo[0], idx[:, 1] - lo[1]] = np.arange(len(idx))
    nearest = np.argmin(((coarse_idx[:, None, :] - idx[None]) ** 2).sum(axis=2), axis=1)
    snr = np.repeat(np.repeat(coarse.snr, 2, axis=0), 2, axis=1)[:height, :width].copy()
    which = nearest[np.repeat(np.repeat(coarse.velocity, 2, axis=0), 2, axis=1)[:height, :width]]
    which = which.astype(np.int32)
    near_threshold = coarse.snr >= fraction * threshold
    full_tiles = _dense_tiles(near_threshold, dense)
    for y0, x0 in full_tiles:
        box = (y0, x0, min(DENSE_TILE, height - y0), min(DENSE_TILE, width - x0))
        exact, exact_v = search_tile(cube, plan, back_end, box)
        snr[y0 : y0 + box[2], x0 : x0 + box[3]] = exact * np.float32(1.0 / math.sqrt(n))
        which[y0 : y0 + box[2], x0 : x0 + box[3]] = exact_v
        near_threshold[y0 // 2 : (y0 + box[2]) // 2, x0 // 2 : (x0 + box[3]) // 2] = False
    cy, cx = np.nonzero(near_threshold)
    if cy.size:
        steps = np.array([[a, b] for a in range(-reach, reach + 1) for b in range(-reach, reach + 1)])
        centre = coarse_idx[coarse.velocity[cy, cx]]  # (K, 2)
        near = centre[:, None, :] + steps[None] - lo  # (K, C, 2)
        candidates = table[near[..., 0], near[..., 1]]
        candidates = np.where(candidates < 0, np.iinfo(np.int64).max, candidates)
        candidates.sort(axis=1)  # ascending, as the full search: a tie goes to the lowest velocity
        candidates[candidates == np.iinfo(np.int64).max] = -1
        origins = np.column_stack([2 * cy - 1, 2 * cx - 1]).astype(np.int64)
        best, best_v = back_end.block_max(cube, origins, candidates, frame_shifts(plan), 4)
        _scatter_max(snr, which, origins, best * np.float32(1.0 / math.sqrt(n)), best_v)
    seconds = time.perf_counter() - start
    log.debug("coarse-fine: %d bins refined, %d dense tiles searched in full", cy.size, len(full_tiles))
    return SearchResult(
        snr, which, plan, seconds, method="coarse-fine", refined=int(cy.size), full_tiles=len(full_tiles)
    )


def _dense_tiles(near_threshold: NDArray[np.bool_], dense: float) -> list[tuple[int, int]]:
    """Full-resolution corners of the ``DENSE_TILE`` tiles in which more than ``dense`` of the bins
    reached the coarse threshold: a field of residuals, not a few movers (their velocities are no
    longer where the coarse stage puts them, and refining costs as much as the full search)."""
    b = DENSE_TILE // 2
    out = []
    for yb in range(0, near_threshold.shape[0], b):
        for xb in range(0, near_threshold.shape[1], b):
            if float(near_threshold[yb : yb + b, xb : xb + b].mean()) > dense:
                out.append((2 * yb, 2 * xb))
    return out


def _scatter_max(snr: F32, which: I32, origins: I64, best: F32, best_v: I32) -> None:
    """Write the refined blocks into the maps, keeping the largest value where blocks overlap (a
    refined value replaces the coarse one even when smaller)."""
    height, width = snr.shape
    b = best.shape[1]
    oy = origins[:, 0, None, None] + np.arange(b)[None, :, None]
    ox = origins[:, 1, None, None] + np.arange(b)[None, None, :]
    ys, xs = np.broadcast_to(oy, best.shape).ravel(), np.broadcast_to(ox, best.shape).ravel()
    values, vel = best.ravel(), best_v.ravel()
    ok = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width) & (vel >= 0)
    ys, xs, values, vel = ys[ok], xs[ok], values[ok], vel[ok]
    flat = ys * width + xs
    order = np.lexsort((-vel, values, flat))  # each pixel's largest last (of equal ones, the lowest velocity)
    flat = flat[order]
    last = np.append(flat[1:] != flat[:-1], True)
    pick = order[last]
    snr[ys[pick], xs[pick]] = values[pick]
    which[ys[pick], xs[pick]] = vel[pick]
