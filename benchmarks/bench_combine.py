"""Benchmark: combining a stack of uint16 frames, nightpipe vs ccdproc.combine, side by side.

Both sides combine the same FITS files on disk with a median centre and one pass of sigma
clipping with median/MAD-std (ccdproc: ``combine(method='median', sigma_clip=True,
sigma_clip_func=np.ma.median, sigma_clip_dev_func=mad_std)``; nightpipe: ``combine_files``
with ``max_iters=1``). Each measurement runs in its own subprocess, so the peak RSS
(``ru_maxrss``) is that side's alone. Prints one line per measurement, the targets of issue 5
as PASS/FAIL lines, and writes ``bench-results/combine.json``.

Usage: ``.venv/bin/python benchmarks/bench_combine.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]


def make_stack(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """Write ``n`` uint16 bias-like frames of ``size x size`` (BZERO=32768) with a few outliers."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    pattern = rng.normal(0, 3, (size, size)).astype(np.float32)
    paths = []
    for i in range(n):
        path = folder / f"frame_{size}_{i:03d}.fits"
        if not path.exists():
            frame = 1000.0 + pattern + rng.normal(0, 10, (size, size)).astype(np.float32)
            hits = rng.integers(0, size, (2, size * 4))
            frame[hits[0], hits[1]] = 60000.0  # cosmic rays to clip
            fits.PrimaryHDU(np.clip(frame, 0, 65535).astype(np.uint16)).writeto(path)
        paths.append(path)
    return paths


def worker(side: str, paths: list[str], out: str | None, threads: int) -> None:
    """Run one combination in this process and print its time and peak RSS as JSON."""
    import numba

    numba.set_num_threads(threads)
    if side == "ours":
        from nightpipe.calib.combine import CombineOptions, combine_files

        opts = CombineOptions(method="median", clip="sigma", max_iters=1, sigma_low=3, sigma_high=3)
        combine_files(paths[:2], opts)  # compile / load the cached kernel outside the timing
        start = time.perf_counter()
        data = combine_files(paths, opts).data
        seconds = time.perf_counter() - start
    else:
        import ccdproc
        from astropy.stats import mad_std

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            combined = ccdproc.combine(
                paths,
                method="median",
                sigma_clip=True,
                sigma_clip_low_thresh=3,
                sigma_clip_high_thresh=3,
                sigma_clip_func=np.ma.median,
                sigma_clip_dev_func=mad_std,
                unit="adu",
            )
        seconds = time.perf_counter() - start
        data = np.asarray(combined.data, dtype=np.float32)
    if out:
        np.save(out, data)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))


def run(side: str, paths: list[Path], out: Path | None, threads: int) -> dict[str, float]:
    args = ["--worker", side, "--threads", str(threads)]
    if out is not None:
        args += ["--out", str(out)]
    return run_json_child(__file__, *args, *(str(p) for p in paths))


def main() -> int:
    parser = bench_parser(__doc__, "20 frames of 1024x1024 instead of 50 of 2048x2048", whole_doc=True)
    parser.add_argument("--repeats", type=int, default=3, help="runs of our side per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.paths, args.out, args.threads)
        return 0

    size, counts = (1024, (5, 10, 20)) if args.quick else (2048, (10, 25, 50))
    results: dict[str, object] = {"size": size, "threads": args.threads, "measurements": []}
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench_combine_") as tmp:
        folder = Path(tmp)
        paths = make_stack(folder, max(counts), size)
        # read every file once so that both sides start from a warm page cache
        for p in paths:
            p.read_bytes()
        n_max = max(counts)
        scaling: dict[int, float] = {}
        # interleave the frame counts so that a change of machine load hits all of them alike
        timings: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
        for _ in range(args.repeats):
            for n in counts:
                timings[n].append(run("ours", paths[:n], None, args.threads))
        for n in counts:
            runs = timings[n]
            scaling[n] = statistics.median(r["seconds"] for r in runs)
            rows.append(
                {
                    "name": "ours",
                    "frames": n,
                    "size": size,
                    "seconds": scaling[n],
                    "rss_mb": max(r["rss_mb"] for r in runs),
                }
            )
            print(
                f"nightpipe.combine_files  {n:3d} x {size}x{size}  {scaling[n]:7.2f} s  "
                f"({scaling[n] / n * 1000:.1f} ms/frame)  peak RSS {rows[-1]['rss_mb']:.0f} MB",
                flush=True,
            )
        ours_out, peer_out = folder / "ours.npy", folder / "peer.npy"
        ours = run("ours", paths, ours_out, args.threads)
        peer = run("peer", paths, peer_out, args.threads)
        ours_t = statistics.median([scaling[n_max], ours["seconds"]])
        ratio = peer["seconds"] / ours_t
        a, b = np.load(ours_out), np.load(peer_out)
        diff = np.abs(a.astype(np.float64) - b)
        rel = diff / np.maximum(np.abs(b), 1e-30)
        agree = {
            "max_abs_diff": float(diff.max()),
            "max_rel_diff": float(rel.max()),
            "pixels_differing_1e-6": int(np.count_nonzero(rel > 1e-6)),
            "pixels": int(a.size),
        }
        print(
            f"side by side {n_max} x {size}x{size}: ours {ours_t:.2f} s, RSS {ours['rss_mb']:.0f} MB | "
            f"ccdproc {peer['seconds']:.2f} s, RSS {peer['rss_mb']:.0f} MB | ratio {ratio:.1f}x"
        )
        print(
            f"agreement: max |diff| {agree['max_abs_diff']:.3g} ADU, "
            f"max relative {agree['max_rel_diff']:.3g}, "
            f"{agree['pixels_differing_1e-6']} of {agree['pixels']} pixels differ by more than 1e-6"
        )
        # a check of bounded memory with twice the frames (repeating the files)
        many = run("ours", paths + paths, None, args.threads)
        print(
            f"nightpipe.combine_files  {2 * n_max:3d} x {size}x{size}  {many['seconds']:7.2f} s  "
            f"peak RSS {many['rss_mb']:.0f} MB"
        )
        rows.append({"name": "ours", "frames": 2 * n_max, "size": size, **many})
    per_frame = [scaling[n] / n for n in counts]
    # no worse than linear: time(n_max)/time(n_min) against n_max/n_min (1.0 = exactly linear;
    # below 1 the fixed costs dominate the small stacks)
    linear = (scaling[max(counts)] / scaling[min(counts)]) / (max(counts) / min(counts))
    targets = {
        "speed >= 10x ccdproc": ratio >= 10.0,
        "peak RSS < 1.5 GB": max(float(str(r["rss_mb"])) for r in rows) < 1536.0,
        "linear scaling (time grows at most 1.3x faster than the number of frames)": linear <= 1.3,
        "agrees with ccdproc (relative difference <= 1e-6)": agree["max_rel_diff"] <= 1e-6,
    }
    if args.quick:
        print("(quick run: 1024x1024 frames; the issue's targets are for 50 x 2048x2048)")
    for name, ok in targets.items():
        print(f"target {'PASS' if ok else 'FAIL'}  {name}")
    results.update(
        {
            "measurements": rows,
            "side_by_side": {
                "frames": n_max,
                "ours": ours,
                "ours_median_s": ours_t,
                "ccdproc": peer,
                "ratio": ratio,
            },
            "time_per_frame_s": dict(zip([str(n) for n in counts], per_frame, strict=True)),
            "linearity": linear,
            "agreement": agree,
            "targets": targets,
            "quick": args.quick,
        }
    )
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "combine.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
