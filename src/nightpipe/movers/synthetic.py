"""Synthetic tracking (shift-and-stack): faint movers found in the sum of registered frames shifted
along a grid of velocities.

The frames (registered on one pixel grid) lose their static sky (the median of the frames), are
matched-filtered with the PSF (a Gaussian of the night's FWHM), divided by their noise and clipped
at ``clip`` sigma (a cosmic ray or a star's residual in one frame then weighs at most
``clip / sqrt(N)`` in a stack). Every velocity of the grid (rates up to ``max_rate``, in steps
that move the track by ``step_px`` over the night) is then stacked in two passes
(:mod:`nightpipe.movers.stack_kernels`): partial stacks of groups of frames, shared by the
velocities whose within-group shifts are the same, then the groups summed. The best stack per
pixel (max-projection) and its velocity are searched for peaks above the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nightpipe.movers.stack_kernels import NumbaKernel, StackKernel

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def velocity_grid(
    span_days: float, max_rate_px_day: float, *, step_px: float = 1.0, min_motion_px: float = 2.0
) -> F64:
    """(vy, vx) in pixels per day: a square grid of steps moving the track ``step_px`` over the span,
    inside the disc of ``max_rate`` and outside the slow ones (less than ``min_motion_px`` over it)."""
    if span_days <= 0:
        raise ValueError("synthetic tracking needs frames at two times at least (span 0)")
    dv = step_px / span_days
    n = math.floor(max_rate_px_day / dv)
    axis = np.arange(-n, n + 1) * dv
    vy, vx = (a.ravel() for a in np.meshgrid(axis, axis, indexing="ij"))
    rate = np.hypot(vy, vx)
    keep = (rate <= max_rate_px_day + 1e-9) & (rate * span_days >= min_motion_px)
    return np.column_stack([vy[keep], vx[keep]])


@dataclass(frozen=True)
class StackPlan:
    """How the velocities are stacked: the partial stacks of each group and how each velocity sums them."""

    times: F64  # days, per frame
    t_ref: float  # the epoch of the positions found (mid-night)
    velocities: F64  # (V, 2) vy, vx px/day
    members: I64  # (P, M) frames of each partial stack, -1 for none
    shifts: I64  # (P, M, 2) within-group shifts
    index: I64  # (V, G) partial stack of each group for each velocity
    offsets: I64  # (V, G, 2) the groups' offsets
    margin: int  # largest total shift

    @property
    def cost(self) -> float:
        """Additions per pixel of the two passes (what the grouping minimises)."""
        used = (self.members >= 0).sum()
        return float(used) + float(self.index.size)


def make_plan(times: F64, velocities: F64, n_groups: int) -> StackPlan:
    """The two-pass plan with ``n_groups`` groups of consecutive frames."""
    t = np.asarray(times, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t_ref = 0.5 * (float(t.min()) + float(t.max()))
    groups = [g for g in np.array_split(order, max(1, min(n_groups, t.size))) if g.size]
    members: list[I64] = []
    shifts: list[I64] = []
    index_cols: list[I64] = []
    offset_cols: list[I64] = []
    for group in groups:
        t_group = float(np.median(t[group]))
        within = np.rint(velocities[:, None, :] * (t[group] - t_group)[None, :, None]).astype(np.int64)
        keys, inverse = np.unique(within.reshape(len(velocities), -1), axis=0, return_inverse=True)
        index_cols.append(np.asarray(inverse, dtype=np.int64).ravel() + len(members))
        for key in keys:
            members.append(group)
            shifts.append(key.reshape(group.size, 2))
        offset_cols.append(np.rint(velocities * (t_group - t_ref)).astype(np.int64))
    width = max(m.size for m in members)
    member_arr = np.full((len(members), width), -1, dtype=np.int64)
    shift_arr = np.zeros((len(members), width, 2), dtype=np.int64)
    for p, (m, s) in enumerate(zip(members, shifts, strict=True)):
        member_arr[p, : m.size] = m
        shift_arr[p, : m.size] = s
    offsets = np.stack(offset_cols, axis=1)
    index = np.stack(index_cols, axis=1)
    total = offsets[:, :, None, :] + np.stack(
        [shift_arr[index[:, g]] for g in range(index.shape[1])], axis=1
    )  # (V, G, M, 2)
    margin = int(np.abs(total).max()) + 1 if total.size else 1
    return StackPlan(t, t_ref, velocities, member_arr, shift_arr, index, offsets, margin)


def best_plan(times: F64, velocities: F64, *, max_groups: int = 12) -> StackPlan:
    """The plan of least cost over 1..max_groups groups."""
    plans = [make_plan(times, velocities, g) for g in range(1, min(max_groups, len(times)) + 1)]
    return min(plans, key=lambda p: p.cost)


def prepare(
    frames: F32, fwhm_px: float, *, clip: float = 6.0, chunk_rows: int = 128, subtract_static: bool = True
) -> F32:
    """Static sky removed (median of the frames; ``subtract_static=False``: already done), matched
    filter, per-frame noise to 1, clipped; in place on a float32 cube (frames, H, W) of registered
    frames (NaN: no data, counts as 0)."""
    from scipy.ndimage import gaussian_filter

    cube = np.asarray(frames, dtype=np.float32)
    if cube.ndim != 3 or cube.shape[0] < 3:
        raise ValueError(f"synthetic tracking needs a cube of >= 3 registered frames, got shape {cube.shape}")
    for y0 in range(0, cube.shape[1], chunk_rows) if subtract_static else ():
        block = cube[:, y0 : y0 + chunk_rows]
        block -= np.nanmedian(block, axis=0)[None]
    np.nan_to_num(cube, copy=False, nan=0.0)
    sigma = fwhm_px / 2.3548
    rng = np.random.default_rng(0)
    for k in range(cube.shape[0]):
        cube[k] = gaussian_filter(cube[k], sigma, mode="constant")
        sample = rng.choice(cube[k].ravel(), size=min(cube[k].size, 200_000), replace=False)
        noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
        cube[k] *= 1.0 / noise if noise > 0 else 0.0
        np.clip(cube[k], -clip, clip, out=cube[k])
    return cube


@dataclass(frozen=True)
class SearchResult:
    """The best stack SNR per pixel (positions at ``plan.t_ref``) and the velocity that gave it."""

    snr: F32  # (H, W)
    velocity: NDArray[np.int32]  # (H, W) index into plan.velocities
    plan: StackPlan
    seconds: float
    method: str = "two-pass"  # or "coarse-fine": see :mod:`nightpipe.movers.coarse_fine`
    refined: int = 0  # coarse-fine: the binned pixels refined at full resolution
    full_tiles: int = 0  # coarse-fine: the tiles crowded with candidates, searched in full

    @property
    def frame_pixels_per_s(self) -> float:
        """The search rate: frames x pixels x velocities stacked per second."""
        n = self.plan.times.size * self.snr.size * len(self.plan.velocities)
        return n / self.seconds if self.seconds > 0 else math.inf


def search(
    cube: F32,
    plan: StackPlan,
    *,
    kernel: StackKernel | None = None,
    tile: int = 256,
    exact_above: float | None = None,
    fwhm_px: float | None = None,
) -> SearchResult:
    """Shift-and-stack of a prepared cube over the plan's velocities, tile by tile.

    With ``exact_above`` (a stack SNR, the peaks' threshold) and a PSF of ``fwhm_px`` >= 3 px, the
    coarse-to-fine search (:func:`nightpipe.movers.coarse_fine.search_coarse_fine`, about 10 x
    faster): the map is this one near the peaks above ``exact_above``, coarser below it."""
    import time

    if exact_above is not None and fwhm_px is not None:
        from nightpipe.movers import coarse_fine

        if fwhm_px >= coarse_fine.MIN_FWHM_PX:
            return coarse_fine.search_coarse_fine(cube, plan, exact_above, kernel=kernel, tile=tile)

    back_end = kernel or NumbaKernel()
    n, height, width = cube.shape
    best = np.full((height, width), -np.inf, dtype=np.float32)
    which = np.full((height, width), -1, dtype=np.int32)
    start = time.perf_counter()
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            h, w = min(tile, height - y0), min(tile, width - x0)
            core_best, core_which = search_tile(cube, plan, back_end, (y0, x0, h, w))
            best[y0 : y0 + h, x0 : x0 + w] = core_best
            which[y0 : y0 + h, x0 : x0 + w] = core_which
    seconds = time.perf_counter() - start
    best *= np.float32(1.0 / math.sqrt(n))
    return SearchResult(best, which, plan, seconds)


def search_tile(
    cube: F32, plan: StackPlan, back_end: StackKernel, box: tuple[int, int, int, int]
) -> tuple[F32, NDArray[np.int32]]:
    """The two passes on the tile ``box`` = (y0, x0, h, w) of the cube (with its margin, zeros off the
    cube): the best stack sum (not yet divided by sqrt(frames)) per pixel and its velocity."""
    y0, x0, h, w = box
    n, height, width = cube.shape
    m = plan.margin
    padded = np.zeros((n, h + 2 * m, w + 2 * m), dtype=np.float32)
    ys, ye = max(0, y0 - m), min(height, y0 + h + m)
    xs, xe = max(0, x0 - m), min(width, x0 + w + m)
    padded[:, ys - y0 + m : ye - y0 + m, xs - x0 + m : xe - x0 + m] = cube[:, ys:ye, xs:xe]
    partials = back_end.partial_sums(padded, plan.members, plan.shifts)
    core_best = np.full((h, w), -np.inf, dtype=np.float32)
    core_which = np.full((h, w), -1, dtype=np.int32)
    back_end.combine_max(partials, plan.index, plan.offsets, m, core_best, core_which)
    return core_best, core_which


@dataclass(frozen=True)
class Peak:
    """A candidate of the search: place at ``t_ref`` (pixels), velocity (px/day), stack SNR."""

    y: float
    x: float
    vy: float
    vx: float
    snr: float


def peaks(result: SearchResult, threshold: float, *, radius: int = 3) -> list[Peak]:
    """Local maxima of the max-projection above ``threshold`` (stack SNR), brightest first."""
    from scipy.ndimage import maximum_filter

    snr = result.snr
    local = (snr == maximum_filter(snr, size=2 * radius + 1, mode="constant", cval=-np.inf)) & (
        snr >= threshold
    )
    ys, xs = np.nonzero(local)
    v = result.plan.velocities[result.velocity[ys, xs]]
    found = [
        Peak(float(y), float(x), float(vy), float(vx), float(snr[y, x]))
        for y, x, (vy, vx) in zip(ys, xs, v, strict=True)
    ]
    return sorted(found, key=lambda p: -p.snr)
