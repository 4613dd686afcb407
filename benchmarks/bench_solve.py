"""Benchmark of plate solving the HAT-P-32 night: nightpipe vs independent solve-field runs.

Usage::

    .venv/bin/python benchmarks/bench_solve.py [--quick] [--data ../shared/data]

Ours: the whole night (142 raw frames) through :class:`nightpipe.astrometry.series.NightSolver`
(read, detect stars, one hinted solve-field on the first frame's star list, then reference
matching and a refinement on the index stars for every other frame), timed per frame.
Peers, each frame solved on its own with the same hints (RA/Dec from the header, scale
5.21"/px +-10 %, radius 2 deg):

* ``solve-field`` on the image, as a user would run it (it extracts its own sources);
* ``solve-field`` on our star list (what a pipeline gets without reference matching).

--quick runs the peers on 10 frames (spread over the night); the full run on every frame.
Each side runs in its own process so that peak RSS figures are separate. Results go to
``bench-results/solve.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
HATP32 = (31.042917, 46.687778)
INDEX_DIR = Path("/usr/share/astrometry")


def _ours(folder: Path) -> dict[str, object]:
    import numpy as np

    from nightpipe.astrometry.index_catalog import IndexCatalog
    from nightpipe.astrometry.series import NightSolver
    from nightpipe.config import AstrometryConfig
    from nightpipe.errors import AstrometryError
    from nightpipe.frames.fitsio import read_image

    files = sorted(folder.glob("*.FITS"))
    config = AstrometryConfig()
    start_all = time.perf_counter()
    solver = NightSolver(config, IndexCatalog.from_dirs(config.index_dirs))
    times, offsets, rms, methods, failures = [], [], [], [], []
    for path in files:
        start = time.perf_counter()
        data, header = read_image(path)
        try:
            solution = solver.solve(data, header, name=path.name)
        except AstrometryError as exc:
            failures.append(str(exc))
            times.append(time.perf_counter() - start)
            continue
        times.append(time.perf_counter() - start)
        x, y = solution.wcs.all_world2pix([HATP32], 0)[0]
        near = np.hypot(solution.stars.x - x, solution.stars.y - y)
        offsets.append(float(near.min()))
        rms.append(float(solution.quality.rms_arcsec))
        methods.append(solution.method)
    return {
        "frames": len(files),
        "times": times,
        "total_s": time.perf_counter() - start_all,
        "target_offsets_px": offsets,
        "rms_arcsec": rms,
        "methods": methods,
        "failures": failures,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _peer(folder: Path, n: int, mode: str) -> dict[str, object]:
    from nightpipe.astrometry.hints import hints_from_header
    from nightpipe.astrometry.solver import write_xylist
    from nightpipe.astrometry.sources import detect_stars
    from nightpipe.config import AstrometryConfig
    from nightpipe.frames.fitsio import read_image

    files = sorted(folder.glob("*.FITS"))
    chosen = files[:: max(1, len(files) // n)][:n] if n < len(files) else files
    times, solved = [], 0
    for path in chosen:
        data, header = read_image(path)
        hints = hints_from_header(header, AstrometryConfig())
        with tempfile.TemporaryDirectory(prefix="bench-solve-") as tmp:
            target = path
            extra: list[str] = []
            if mode == "xylist":
                stars = detect_stars(data)  # not timed: the pipeline has the star list already
                target = Path(tmp) / "stars.xyls"
                write_xylist(stars, target)
                extra = ["--x-column", "X", "--y-column", "Y", "--sort-column", "FLUX",
                         "--width", str(data.shape[1]), "--height", str(data.shape[0]),
                         "--no-remove-lines", "--uniformize", "0"]  # fmt: skip
            cmd = ["solve-field", "--no-plots", "--overwrite", "--dir", tmp, "--cpulimit", "120",
                   "--scale-units", "arcsecperpix", "--scale-low", f"{hints.scale_low}",
                   "--scale-high", f"{hints.scale_high}", "--ra", f"{hints.ra}", "--dec", f"{hints.dec}",
                   "--radius", "2", *extra, str(target)]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
            solved += any(Path(tmp).glob("*.solved"))
    return {
        "frames": len(chosen),
        "times": times,
        "solved": solved,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _run_worker(args: list[str]) -> dict[str, object]:
    return run_json_child(Path(__file__).resolve(), "--worker", *args, env={"PYTHONWARNINGS": "ignore"})


def main() -> int:
    parser = bench_parser(__doc__, "peers on 10 frames only", whole_doc=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.data / "hatp32-microobservatory"
    if args.worker:
        kind = args.worker[0]
        result = _ours(folder) if kind == "ours" else _peer(folder, int(args.worker[1]), kind)
        print(json.dumps(result))
        return 0
    if shutil.which("solve-field") is None or not any(INDEX_DIR.glob("index-*.fits")):
        print("solve-field or the index files are missing; install astrometry.net and astrometry-data-tycho2")
        return 2
    n_peer = 10 if args.quick else 10_000
    ours = _run_worker(["ours"])
    image = _run_worker(["image", str(n_peer)])
    xyls = _run_worker(["xylist", str(n_peer)])
    ours_med = statistics.median(ours["times"])  # type: ignore[arg-type]
    lines = []
    results: dict[str, object] = {"ours": ours, "solve_field_image": image, "solve_field_xylist": xyls}
    for name, peer in (("solve-field on image", image), ("solve-field on our star list", xyls)):
        peer_med = statistics.median(peer["times"])  # type: ignore[arg-type]
        ratio = peer_med / ours_med
        lines.append(
            f"{'night, s/frame':<16} ours {ours_med:.4f} s ({ours['frames']} frames, peak RSS "
            f"{ours['peak_rss_mb']:.0f} MB) | {name}: {peer_med:.3f} s ({peer['frames']} frames, "
            f"{peer['solved']} solved, peak RSS {peer['peak_rss_mb']:.0f} MB) | ratio {ratio:.1f}x"
        )
        results[f"ratio_vs_{'image' if 'image' in name else 'xylist'}"] = ratio
    for line in lines:
        print(line)
    offsets = [float(v) for v in ours["target_offsets_px"]]  # type: ignore[attr-defined]
    rms = [float(v) for v in ours["rms_arcsec"]]  # type: ignore[attr-defined]
    methods = [str(m) for m in ours["methods"]]  # type: ignore[attr-defined]
    n_frames = int(ours["frames"])  # type: ignore[call-overload]
    counts = {m: methods.count(m) for m in sorted(set(methods))}
    print(f"ours: total {ours['total_s']:.1f} s for {n_frames} frames; methods {counts}")
    median_offset = statistics.median(offsets)
    print(f"HAT-P-32 to nearest detection: max {max(offsets):.3f} px, median {median_offset:.3f} px")
    print(f'residual RMS on index stars: max {max(rms):.3f}", median {statistics.median(rms):.3f}"')
    ratio_image = float(results["ratio_vs_image"])  # type: ignore[arg-type]
    checks = [
        (f"every frame solved ({len(offsets)}/{n_frames})", len(offsets) == n_frames),
        ("HAT-P-32 within 1 px of its star on every frame", max(offsets) < 1.0),
        ("residuals under 1 arcsec on every frame", max(rms) < 1.0),
        (f"at least 10x faster than solve-field on the image ({ratio_image:.1f}x)", ratio_image >= 10),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    out = ROOT / "bench-results" / "solve.json"
    out.parent.mkdir(exist_ok=True)
    results["checks"] = {text: ok for text, ok in checks}
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
