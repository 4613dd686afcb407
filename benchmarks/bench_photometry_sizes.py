"""Photometry against sep at 1024², 2048² and 4096², with one thread and with all (issue 22).

Issue 22 wants the photometry at least 2x sep at each of these sizes, quiet and under load, and
with one thread against sep's one thread (sep has no threads). Each size and thread count runs in
its own child process; inside it the two sides alternate run by run (ours, sep, ours, sep...), so
that a change of the machine's load hits both alike, and the medians are compared.

Two of our figures per frame, against the same sep run (``Background``, ``extract`` at 5 sigma,
``sum_circle`` per radius with the annulus):

- ``library``: what sep does and no more (``mesh_background``, ``detect_sources``,
  ``aperture_photometry`` with the sigma-clipped annulus median), as in ``bench_photometry.py``;
- ``measure_frame``: the photometry step's whole per-frame work, which also measures every
  source's shape, fits the frame's Moffat profile and sizes the apertures from the FWHM.

The floor is one pass over the frame's pixels (``np.sum``), measured in the same child.
Star density is that of the issue's 1,500 stars on 2048²; five radii (1-3 FWHM), annulus 4-6 FWHM.

Usage: ``python benchmarks/bench_photometry_sizes.py [--quick] [--repeats N]``
(``--quick``: 1024² and 2048² only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
STARS_PER_MPIX = 1500 / 2048**2
TARGET = 2.0


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def child(size: int, repeats: int) -> dict[str, Any]:
    """Time both sides alternately on one synthetic frame of ``size``²."""
    import sep

    from nightpipe.config import PhotometryConfig
    from nightpipe.photometry.aperture import aperture_photometry
    from nightpipe.photometry.background import mesh_background
    from nightpipe.photometry.detect import detect_sources
    from nightpipe.photometry.measure import CameraParams, measure_frame
    from nightpipe.photometry.synthetic import make_star_field

    n_stars = round(STARS_PER_MPIX * size * size)
    field = make_star_field((size, size), n_stars, fwhm=3.0, flux_range=(2e3, 2e5), seed=1)
    data = np.ascontiguousarray(field.data, dtype=np.float32)
    config = PhotometryConfig()
    camera = CameraParams(gain=1.5, read_noise=10.0)
    first = measure_frame(data, config, camera=camera)  # compiles what is not cached yet
    radii = [float(r) for r in first.radii]
    annulus = first.annulus or (12.0, 18.0)

    def library() -> None:
        bkg = mesh_background(data, box=config.background_box, filter_size=config.background_filter)
        det = detect_sources(data, bkg.level, bkg.rms, detect_sigma=5.0, min_area=5)
        aperture_photometry(data, det.x, det.y, radii, annulus=annulus, statistic="median")

    def whole() -> None:
        measure_frame(data, config, camera=camera)

    def peer() -> None:
        bkg = sep.Background(data, bw=64, bh=64, fw=3, fh=3)
        obj = sep.extract(data - bkg.back(), 5.0, err=bkg.globalrms, minarea=5)
        for r in radii:
            sep.sum_circle(data, obj["x"], obj["y"], r, bkgann=annulus, subpix=0)

    library()
    peer()
    times: dict[str, list[float]] = {"library": [], "measure_frame": [], "sep": [], "floor": []}
    for _ in range(repeats):
        times["library"].append(_timed(library))
        times["sep"].append(_timed(peer))
        times["measure_frame"].append(_timed(whole))
        times["floor"].append(_timed(lambda: float(np.sum(data))))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "size": size,
        "stars": n_stars,
        "sources": len(first.detections),
        **{f"{k}_s": v for k, v in medians.items()},
    }


def main() -> int:
    parser = bench_parser(__doc__, "1024² and 2048² only")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of each side")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return 0
    sizes = (1024, 2048) if args.quick else (1024, 2048, 4096)
    load = os.getloadavg()[0]
    rows = []
    failed = []
    print(f"photometry vs sep, {args.repeats} alternating runs each, load {load:.1f} at the start")
    for threads in (1, os.cpu_count() or 1):
        for size in sizes:
            env = {"NUMBA_NUM_THREADS": str(threads)}
            row = run_json_child(
                __file__, "--child", str(size), "--repeats", str(args.repeats), cwd=ROOT, env=env
            )
            row["threads"] = threads
            rows.append(row)
            for ours in ("library", "measure_frame"):
                ratio = row["sep_s"] / row[f"{ours}_s"]
                ok = ratio >= TARGET
                if not ok:
                    failed.append(f"{ours} {size}² {threads} thread(s)")
                print(
                    f"{size}² {row['sources']:>5} sources  {threads} thread(s)  {ours:<13} "
                    f"{row[f'{ours}_s']:.3f} s  sep {row['sep_s']:.3f} s  x{ratio:.2f} sep  "
                    f"(target x{TARGET:.0f}: {'PASS' if ok else 'FAIL'})  floor {row['floor_s'] * 1e3:.1f} ms"
                )
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    out = ROOT / "bench-results" / "photometry_sizes.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "load_start": load, "failed": failed}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
