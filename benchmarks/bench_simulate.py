"""Benchmark of the synthetic-night generator (``nightpipe.simulate.simulate_night``).

Usage::

    .venv/bin/python benchmarks/bench_simulate.py [--quick] [--repeats 3]

There is no peer library that writes a whole night with a truth file, so the reference is the
floor: writing the same number of uint16 FITS files of the same size with astropy (no
simulation at all), measured in the same run. Each measurement runs in its own process, so
its peak RSS is its own:

* ``night``: the issue's night, 1024x1024, 60 lights + 30 calibration frames (10 bias,
  2 x 5 darks, 10 flats), default options (random field of about 2,500 stars, Moffat PSF,
  cosmic rays, transit), in a warm process (imports done, compiled kernels cached);
* ``night-cold``: the same in a fresh process, imports and compilation included;
* ``night-4k``: 4096x4096, 4 lights + 3 calibration frames (the largest size the issue asks
  for), frames/s only;
* ``floor``: astropy writes of the same files (``write``), and the same with the random
  draws a frame needs at least (one normal deviate per pixel, ``write+rng``).

Target of issue 3: the 1024x1024 night in under 20 s on this machine. ``--quick`` uses
512x512 frames (the target is then scaled by the pixel count and only indicative).
Results go to ``bench-results/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
TARGET_S = 20.0


def _options(size: int, n_lights: int, small_calibration: bool) -> object:
    from dataclasses import replace

    from nightpipe.simulate import SimOptions

    opts = SimOptions()
    opts = replace(opts, camera=replace(opts.camera, size=size), site=replace(opts.site, n_lights=n_lights))
    if small_calibration:
        opts = replace(
            opts, calibration=replace(opts.calibration, n_bias=1, n_dark=1, dark_exptimes=(60.0,), n_flat=1)
        )
    return opts


def child_night(size: int, n_lights: int, warm: bool, small_calibration: bool) -> dict[str, float]:
    """Simulate one night in this process; return the time and peak RSS."""
    from nightpipe.simulate import simulate_night

    opts = _options(size, n_lights, small_calibration)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        if warm:  # imports, compiled kernels, astropy caches
            simulate_night(Path(tmp) / "warm", _options(64, 2, True))  # type: ignore[arg-type]
        t0 = time.perf_counter()
        truth = simulate_night(Path(tmp) / "night", opts)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "frames": len(truth.frames),
        "stars": len(truth.field["stars"]["x"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child_floor(size: int, n_frames: int, with_rng: bool) -> dict[str, float]:
    """Write ``n_frames`` uint16 FITS files of ``size`` squared with astropy (the floor)."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(1)
    base = rng.integers(900, 1200, (size, size)).astype(np.uint16)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        t0 = time.perf_counter()
        for i in range(n_frames):
            data = base
            if with_rng:
                noise = rng.standard_normal((size, size), dtype=np.float32)
                data = (base + noise * 10).astype(np.uint16)
            header = fits.Header(
                {"EXPTIME": 60.0, "IMAGETYP": "Light Frame", "DATE-OBS": "2017-12-20T02:00:00"}
            )
            fits.PrimaryHDU(data=data, header=header).writeto(Path(tmp) / f"f_{i:03d}.fits")
        elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(args: list[str]) -> dict[str, float]:
    return run_json_child(__file__, "--child", *args, cwd=ROOT)


def median_of(args: list[str], repeats: int) -> tuple[float, float, dict[str, float]]:
    """Median time, peak RSS and the first result of ``repeats`` child runs."""
    runs = [run_child(args) for _ in range(repeats)]
    return (
        statistics.median(r["seconds"] for r in runs),
        max(r["peak_rss_mb"] for r in runs),
        runs[0],
    )


def main() -> int:
    parser = bench_parser(__doc__, "512x512 frames, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "night":
            size, n_lights, warm, small = int(rest[0]), int(rest[1]), rest[2] == "1", rest[3] == "1"
            print(json.dumps(child_night(size, n_lights, warm, small)))
        else:
            print(json.dumps(child_floor(int(rest[0]), int(rest[1]), rest[2] == "1")))
        return 0

    size = 512 if args.quick else 1024
    repeats = 1 if args.quick else max(args.repeats, 1)
    n_frames = 90
    rows = []
    # interleaved, so that the load of the (shared) machine hits every side alike
    runs: dict[str, list[dict[str, float]]] = {"night": [], "cold": [], "floor": [], "floor_rng": []}
    for r in range(repeats):
        runs["night"].append(run_child(["night", str(size), "60", "1", "0"]))
        runs["floor"].append(run_child(["floor", str(size), str(n_frames), "0"]))
        runs["floor_rng"].append(run_child(["floor", str(size), str(n_frames), "1"]))
        if r == 0:
            runs["cold"].append(run_child(["night", str(size), "60", "0", "0"]))

    def summary(name: str) -> tuple[float, float]:
        return (
            statistics.median(x["seconds"] for x in runs[name]),
            max(x["peak_rss_mb"] for x in runs[name]),
        )

    night_s, night_rss = summary("night")
    cold_s, cold_rss = summary("cold")
    floor_s, floor_rss = summary("floor")
    floor_rng_s, floor_rng_rss = summary("floor_rng")
    info = runs["night"][0]
    frames = int(info["frames"])
    rows.append(("night (warm)", f"{size}x{size} x {frames}", night_s, floor_s, night_rss, floor_rss))
    rows.append(("night (cold process)", f"{size}x{size} x {frames}", cold_s, floor_s, cold_rss, floor_rss))
    rows.append(
        ("night vs write+rng", f"{size}x{size} x {frames}", night_s, floor_rng_s, night_rss, floor_rng_rss)
    )
    big = None
    if not args.quick:
        big_s, big_rss, big_info = median_of(["night", "4096", "4", "1", "1"], 1)
        big_floor, big_floor_rss, _ = median_of(["floor", "4096", str(int(big_info["frames"])), "0"], 1)
        big = {"seconds": big_s, "frames": big_info["frames"], "peak_rss_mb": big_rss, "floor_s": big_floor}
        rows.append(
            ("night-4k", f"4096x4096 x {int(big_info['frames'])}", big_s, big_floor, big_rss, big_floor_rss)
        )

    head = f"{'measurement':<22} {'size':<22} {'ours s':>8} {'floor s':>8} {'ratio':>6}"
    print(f"{head} {'ours MB':>8} {'floor MB':>8}")
    for name, what, ours, floor, rss, frss in rows:
        print(f"{name:<22} {what:<22} {ours:8.2f} {floor:8.2f} {ours / floor:6.2f} {rss:8.0f} {frss:8.0f}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    stars = int(info["stars"])
    print(f"night: {frames / night_s:.1f} frames/s, {stars} stars; floor {n_frames / floor_s:.1f} frames/s")
    target = TARGET_S * (size * size) / (1024 * 1024)
    verdict = "PASS" if night_s < target else "FAIL"
    note = "" if size == 1024 else f" (scaled to {size}x{size}: indicative only)"
    what = "1024x1024 night of 60 lights + 30 calibration frames"
    print(f"{verdict}: {what} in < {target:.1f} s: {night_s:.2f} s{note}")
    cold_verdict = "PASS" if cold_s < target else "FAIL"
    what = "the same from a fresh process (imports, compilation)"
    print(f"{cold_verdict}: {what} in < {target:.1f} s: {cold_s:.2f} s")
    RESULTS.mkdir(exist_ok=True)
    result = {
        "size": size,
        "frames": frames,
        "stars": info["stars"],
        "warm_s": night_s,
        "cold_s": cold_s,
        "floor_write_s": floor_s,
        "floor_write_rng_s": floor_rng_s,
        "peak_rss_mb": night_rss,
        "floor_peak_rss_mb": floor_rss,
        "ratio_to_floor": night_s / floor_s,
        "target_s": target,
        "pass": night_s < target,
        "big": big,
        "repeats": repeats,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    (RESULTS / "simulate.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
