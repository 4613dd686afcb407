"""Benchmark: the synthetic-tracking search (shift-and-stack over a velocity grid) against the
memory-bandwidth floor, measured in the same run.

The cube is 60 prepared frames (float32, unit noise) of 2048x2048 taken every 2 minutes; the
velocity grid moves a track up to 26 px over the night in 1 px steps (2,112 velocities). The
search (:func:`nightpipe.movers.synthetic.search`, the two-pass plan of least cost) is timed and
its rate given in frame-pixels per second (frames x pixels x velocities / s). The floor is the
rate of a plain shift-and-stack that would read every frame-pixel from memory once per
velocity: the bytes per second of a numpy sum over the same cube, / 4 bytes. Prints the load
(``os.getloadavg``) and writes ``bench-results/shift_stack.json``.

Usage: ``.venv/bin/python benchmarks/bench_shift_stack.py [--quick] [--size N] [--tile T]``
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]


def floor_rate(cube: np.ndarray, repeats: int = 3) -> float:
    """Frame-pixels per second a memory-bound stack reaches: the cube's bytes summed by numpy, / 4."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        float(cube.sum(dtype=np.float32))
        best = min(best, time.perf_counter() - start)
    return cube.nbytes / best / 4.0


def main() -> None:
    parser = bench_parser(__doc__, "512x512 frames (the same 60 frames and 2,112 velocities)")
    parser.add_argument("--size", type=int, default=None, help="Frame side (default 2048, quick 512)")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--tile", type=int, default=256, help="Tile side of the search")
    parser.add_argument("--max-shift", type=float, default=26.0, help="Largest track motion, px")
    args = parser.parse_args()
    from nightpipe.movers.synthetic import best_plan, search, velocity_grid

    size = args.size or (512 if args.quick else 2048)
    n = args.frames
    t = np.arange(n) * 2.0 / 1440.0
    span = float(t[-1] - t[0])
    grid = velocity_grid(span, args.max_shift / span)
    plan = best_plan(t, grid)
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((n, size, size), dtype=np.float32)
    load0 = os.getloadavg()
    warm = search(cube[:, :64, :64].copy(), plan, tile=64)  # compile (cached) outside the timing
    del warm
    floor = floor_rate(cube)
    result = search(cube, plan, tile=args.tile)
    floor_after = floor_rate(cube)
    load1 = os.getloadavg()
    rate = result.frame_pixels_per_s
    floor_best = max(floor, floor_after)
    out = {
        "frames": n,
        "size": size,
        "velocities": len(grid),
        "groups": int(plan.index.shape[1]),
        "partial_stacks": int(plan.members.shape[0]),
        "additions_per_pixel": plan.cost,
        "naive_additions_per_pixel": n * len(grid),
        "tile": args.tile,
        "seconds": round(result.seconds, 2),
        "rate_frame_px_per_s": rate,
        "floor_frame_px_per_s": floor_best,
        "ratio_to_floor": rate / floor_best,
        "target_seconds": 60.0 * (size / 2048) ** 2,
        "load_before": load0,
        "load_after": load1,
        "cores": os.cpu_count(),
    }
    print(
        f"search {n} x {size}x{size} x {len(grid)} velocities ({plan.index.shape[1]} groups, "
        f"{plan.members.shape[0]} partial stacks, {plan.cost:.0f} additions/px vs {n * len(grid)} plain): "
        f"{result.seconds:.1f} s"
    )
    print(
        f"rate {rate:.3g} frame-px/s, memory floor {floor_best:.3g} frame-px/s (numpy sum), "
        f"ratio {rate / floor_best:.2f}; load {load0[0]:.1f} -> {load1[0]:.1f} on {os.cpu_count()} cores"
    )
    verdict = "PASS" if result.seconds < out["target_seconds"] else "FAIL"
    print(f"{verdict}: {result.seconds:.1f} s (target {out['target_seconds']:.1f} s for this size)")
    folder = ROOT / "bench-results"
    folder.mkdir(exist_ok=True)
    (folder / "shift_stack.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
