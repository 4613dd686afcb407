"""The coarse-to-fine synthetic-tracking search finds the peaks the full (two-pass) search finds."""

from __future__ import annotations

import numpy as np

from nightpipe.movers.coarse_fine import bin2, frame_shifts, lattice
from nightpipe.movers.stack_kernels import NumbaKernel, stack_reference
from nightpipe.movers.synthetic import best_plan, peaks, prepare, search, velocity_grid
from nightpipe.simulate.mover_cubes import add_movers

N, SIZE, FWHM, THRESHOLD = 40, 160, 3.0, 6.5
TIMES = np.arange(N) * 2.0 / 1440.0


def _prepared(seed: int, n_movers: int) -> np.ndarray:
    """Unit noise and movers of per-frame SNR 0.9-3 (stack SNR 6-19) crossing 3-24 px, prepared."""
    rng = np.random.default_rng(seed)
    movers = []
    for _ in range(n_movers):
        shift, angle = rng.uniform(3, 24), rng.uniform(0, 2 * np.pi)
        vx, vy = shift * np.cos(angle) / (N - 1), shift * np.sin(angle) / (N - 1)
        xm, ym = rng.uniform(15, SIZE - 15, 2)
        movers.append((xm - vx * (N - 1) / 2, ym - vy * (N - 1) / 2, vx, vy, rng.uniform(0.9, 3.0)))
    cube = rng.normal(0, 1, (N, SIZE, SIZE))
    add_movers(cube, movers, FWHM)
    return prepare(cube.astype(np.float32), FWHM, subtract_static=False)


def test_coarse_fine_finds_the_peaks_of_the_full_search() -> None:
    span = float(TIMES[-1] - TIMES[0])
    grid = velocity_grid(span, 24 / span)
    plan = best_plan(TIMES, grid)
    dv = 1.0 / span
    for seed in (3, 4):
        cube = _prepared(seed, 12)
        full = search(cube, plan)
        fast = search(cube, plan, exact_above=THRESHOLD, fwhm_px=FWHM)
        assert fast.method == "coarse-fine"
        assert 0 < fast.refined < 0.1 * (SIZE // 2) ** 2  # the full resolution stack only on a few bins
        want, got = peaks(full, THRESHOLD), peaks(fast, THRESHOLD)
        assert len(want) >= 10  # the injected movers (and some noise) give peaks to compare
        assert len(got) == len(want)
        for p in want:
            q = min(got, key=lambda q: (q.y - p.y) ** 2 + (q.x - p.x) ** 2)
            assert (q.y, q.x) == (p.y, p.x), (p, q)
            assert abs(q.snr - p.snr) < 1e-4 * p.snr, (p, q)
            # equal stacks (velocities of the same integer shifts) may tie within float rounding
            assert max(abs(q.vy - p.vy), abs(q.vx - p.vx)) < 1.5 * dv, (p, q)


def test_coarse_fine_needs_a_sampled_psf_and_a_lattice_of_velocities() -> None:
    cube = _prepared(5, 2)
    span = float(TIMES[-1] - TIMES[0])
    plan = best_plan(TIMES, velocity_grid(span, 10 / span))
    assert search(cube, plan, exact_above=THRESHOLD, fwhm_px=2.0).method == "two-pass"
    assert lattice(plan.velocities) is not None
    assert lattice(np.array([[0.0, 1.0], [0.0, 2.5], [1.0, np.sqrt(2.0)]])) is None


def test_block_max_is_the_plain_stack_and_bins_have_unit_noise() -> None:
    rng = np.random.default_rng(7)
    cube = rng.normal(0, 1, (N, 48, 48)).astype(np.float32)
    span = float(TIMES[-1] - TIMES[0])
    plan = best_plan(TIMES, velocity_grid(span, 12 / span))
    shifts = frame_shifts(plan)
    origins = np.array([[0, 0], [20, 30], [-2, 45]], dtype=np.int64)
    candidates = np.array([[3, 10, -1], [0, 1, 2], [len(shifts) - 1, -1, -1]], dtype=np.int64)
    best, which = NumbaKernel().block_max(cube, origins, candidates, shifts, 4)
    for k, (y0, x0) in enumerate(origins):
        stacks = {int(v): stack_reference(cube, shifts[v]) for v in candidates[k] if v >= 0}
        for by in range(4):
            for bx in range(4):
                y, x = y0 + by, x0 + bx
                if not (0 <= y < 48 and 0 <= x < 48):
                    continue
                values = {v: s[y, x] for v, s in stacks.items()}
                assert best[k, by, bx] == np.float32(max(values.values())) or np.isclose(
                    best[k, by, bx], max(values.values()), atol=1e-4
                )
                assert np.isclose(values[int(which[k, by, bx])], best[k, by, bx], atol=1e-4)
    binned = bin2(cube)
    assert binned.shape == (N, 24, 24)
    assert abs(float(np.std(binned)) - 1.0) < 0.1
