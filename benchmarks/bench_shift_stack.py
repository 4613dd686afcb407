"""Benchmark: the synthetic-tracking search (shift-and-stack over a velocity grid), coarse-to-fine
against the full two-pass search and the memory-bandwidth floor, measured in the same run.

The cube is 60 frames of 2048x2048 taken every 2 minutes: unit noise and ``--movers`` injected
Gaussian movers (FWHM 3 px, per-frame SNR 1.2-2.5, i.e. stack SNR 9-19, crossing 3-25 px),
prepared as the pipeline does (:func:`nightpipe.movers.synthetic.prepare`: matched filter, noise
to 1, clip). The velocity grid moves a track up to 26 px over the night in 1 px steps (2,112
velocities). Timed: the coarse-to-fine search (``search(..., exact_above=6.5, fwhm_px=3)``,
:mod:`nightpipe.movers.coarse_fine`) and the full two-pass search (the previous default; skip it
with ``--skip-full``), wall and CPU time each. Compared: their peaks above 6.5 (same pixel, SNR
within 1e-4) and the injected movers each recovers (a peak within 2 px of the truth at mid-night,
velocity within 2 grid steps). The rate is in frame-pixels per second (frames x pixels x
velocities / s, the work of a plain stack); the floor is the rate of a plain shift-and-stack that
reads every frame-pixel from memory once per velocity: the bytes per second of a numpy sum over
the same cube, / 4 bytes. Prints the load (``os.getloadavg``) and writes
``bench-results/shift_stack.json``.

Usage: ``.venv/bin/python benchmarks/bench_shift_stack.py [--quick] [--size N] [--skip-full]``
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]
FWHM, THRESHOLD = 3.0, 6.5


def floor_rate(cube: np.ndarray, repeats: int = 3) -> float:
    """Frame-pixels per second a memory-bound stack reaches: the cube's bytes summed by numpy, / 4."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        float(cube.sum(dtype=np.float32))
        best = min(best, time.perf_counter() - start)
    return cube.nbytes / best / 4.0


def make_cube(n: int, size: int, n_movers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit-noise frames with Gaussian movers on small stamps; returns the cube and the truth
    (x, y at mid-night, vx, vy px/frame, per-frame SNR) per mover."""
    rng = np.random.default_rng(seed)
    cube = rng.standard_normal((n, size, size), dtype=np.float32)
    s = FWHM / 2.3548
    truth = []
    for _ in range(n_movers):
        shift, angle = rng.uniform(3, 25), rng.uniform(0, 2 * np.pi)
        vx, vy = shift * np.cos(angle) / (n - 1), shift * np.sin(angle) / (n - 1)
        xm, ym = rng.uniform(30, size - 30, 2)
        snr = rng.uniform(1.2, 2.5)
        truth.append((xm, ym, vx, vy, snr))
        peak = snr / (np.sqrt(np.pi) * s)
        for k in range(n):
            x, y = xm + vx * (k - (n - 1) / 2), ym + vy * (k - (n - 1) / 2)
            y0, x0 = int(y) - 8, int(x) - 8
            yy, xx = np.mgrid[y0 : y0 + 17, x0 : x0 + 17]
            stamp = peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s**2))
            cube[k, y0 : y0 + 17, x0 : x0 + 17] += stamp.astype(np.float32)
    return cube, np.array(truth)


def recovered(found: list[Any], truth: np.ndarray, n: int, dt_days: float, dv: float) -> list[int]:
    """Indices of the injected movers with a peak near their place and velocity."""
    out = []
    for i, (xm, ym, vx, vy, _snr) in enumerate(truth):
        for p in found:
            near = np.hypot(p.x - xm, p.y - ym) <= 2.0
            if near and np.hypot(p.vx * dt_days - vx, p.vy * dt_days - vy) * (n - 1) <= 2.0 * dv:
                out.append(i)
                break
    return out


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def same_peaks(want: list[Any], got: list[Any]) -> int:
    """How many of ``want`` are in ``got`` at the same pixel with the same SNR (1e-4 relative)."""
    where = {(p.y, p.x): p.snr for p in got}
    return sum(1 for p in want if abs(where.get((p.y, p.x), -1e9) - p.snr) <= 1e-4 * p.snr)


def additions_per_pixel(plan: Any, result: Any, size: int) -> float:
    """Additions per full-resolution pixel of the coarse-to-fine search: the coarse two-pass plan's
    on a quarter of the pixels, and the refined bins' 16 pixels x 49 velocities x frames."""
    from nightpipe.movers.coarse_fine import coarse_lattice, lattice
    from nightpipe.movers.synthetic import best_plan

    grid = lattice(plan.velocities)
    if grid is None or result.method != "coarse-fine":
        return float(plan.cost)
    idx, dv = grid
    coarse = best_plan(plan.times, (coarse_lattice(idx) * (dv / 2.0)).astype(np.float64))
    return coarse.cost / 4.0 + result.refined * 16 * 49 * plan.times.size / size**2


def main() -> None:
    parser = bench_parser(__doc__, "512x512 frames (the same 60 frames and 2,112 velocities)")
    parser.add_argument("--size", type=int, default=None, help="Frame side (default 2048, quick 512)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--movers", type=int, default=24)
    parser.add_argument("--tile", type=int, default=256, help="Tile side of the search")
    parser.add_argument("--max-shift", type=float, default=26.0, help="Largest track motion, px")
    parser.add_argument("--skip-full", action="store_true", help="Do not time the full two-pass search")
    args = parser.parse_args()
    from nightpipe.movers.synthetic import best_plan, peaks, prepare, search, velocity_grid

    size = args.size or (512 if args.quick else 2048)
    n = args.frames
    dt = 2.0 / 1440.0
    t = np.arange(n) * dt
    span = float(t[-1] - t[0])
    grid = velocity_grid(span, args.max_shift / span)
    plan = best_plan(t, grid)
    cube, truth = make_cube(n, size, args.movers if size >= 256 else 0)
    cube = prepare(cube, FWHM, subtract_static=False)
    small = cube[:, :96, :96].copy()  # compile (cached) outside the timing
    search(small, plan, tile=64, exact_above=THRESHOLD, fwhm_px=FWHM)
    if not args.skip_full:
        search(small, plan, tile=64)
    load0 = os.getloadavg()
    floor = floor_rate(cube)
    fast, fast_wall, fast_cpu = timed(
        lambda: search(cube, plan, tile=args.tile, exact_above=THRESHOLD, fwhm_px=FWHM)
    )
    full, full_wall, full_cpu = (None, np.nan, np.nan)
    if not args.skip_full:
        full, full_wall, full_cpu = timed(lambda: search(cube, plan, tile=args.tile))
    floor_best = max(floor, floor_rate(cube))
    load1 = os.getloadavg()
    work = n * size * size * len(grid)
    adds = additions_per_pixel(plan, fast, size)
    fast_peaks = peaks(fast, THRESHOLD)
    found_fast = recovered(fast_peaks, truth, n, dt, 1.0 / span)
    out: dict[str, Any] = {
        "frames": n,
        "size": size,
        "velocities": len(grid),
        "tile": args.tile,
        "method": fast.method,
        "refined_bins": fast.refined,
        "additions_per_pixel": adds,
        "full_additions_per_pixel": plan.cost,
        "plain_additions_per_pixel": n * len(grid),
        "seconds": round(fast_wall, 2),
        "cpu_seconds": round(fast_cpu, 2),
        "rate_frame_px_per_s": work / fast_wall,
        "floor_frame_px_per_s": floor_best,
        "ratio_to_floor": work / fast_wall / floor_best,
        "peaks": len(fast_peaks),
        "movers_injected": len(truth),
        "movers_recovered": len(found_fast),
        "target_seconds": 60.0 * (size / 2048) ** 2,
        "load_before": load0,
        "load_after": load1,
        "cores": os.cpu_count(),
    }
    print(f"search {n} x {size}x{size} x {len(grid)} velocities, {len(truth)} movers injected")
    print(
        f"coarse-to-fine: {fast_wall:.1f} s wall, {fast_cpu:.1f} s CPU ({fast.refined} bins refined, "
        f"{adds:.0f} "
        f"additions/px vs {plan.cost:.0f} full two-pass, {n * len(grid)} plain); "
        f"rate {work / fast_wall:.3g} frame-px/s, {work / fast_wall / floor_best:.1f} x the memory floor "
        f"{floor_best:.3g}; {len(fast_peaks)} peaks, movers recovered {len(found_fast)}/{len(truth)}"
    )
    if full is not None:
        full_peaks = peaks(full, THRESHOLD)
        found_full = recovered(full_peaks, truth, n, dt, 1.0 / span)
        out |= {
            "full_seconds": round(full_wall, 2),
            "full_cpu_seconds": round(full_cpu, 2),
            "full_rate_frame_px_per_s": work / full_wall,
            "speed_up_wall": full_wall / fast_wall,
            "speed_up_cpu": full_cpu / fast_cpu,
            "full_peaks": len(full_peaks),
            "full_peaks_found_by_fast": same_peaks(full_peaks, fast_peaks),
            "full_movers_recovered": len(found_full),
            "same_movers_recovered": found_full == found_fast,
        }
        print(
            f"full two-pass: {full_wall:.1f} s wall, {full_cpu:.1f} s CPU, rate {work / full_wall:.3g}; "
            f"speed-up {full_wall / fast_wall:.1f} x (CPU {full_cpu / fast_cpu:.1f} x); "
            f"{out['full_peaks_found_by_fast']}/{len(full_peaks)} of its peaks found the same; "
            f"movers recovered {len(found_full)}/{len(truth)} (same set: {found_full == found_fast})"
        )
    print(f"load {load0[0]:.1f} -> {load1[0]:.1f} on {os.cpu_count()} cores")
    verdict = "PASS" if fast_wall < out["target_seconds"] else "FAIL"
    print(f"{verdict}: {fast_wall:.1f} s (target {out['target_seconds']:.1f} s for this size)")
    folder = ROOT / "bench-results"
    folder.mkdir(exist_ok=True)
    (folder / "shift_stack.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
