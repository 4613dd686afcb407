"""How the whole night grows with frames and with frame size (issue 22: want linear in both).

Simulates the demo night (a transit on HAT-P-32's real Tycho-2 field, MaxIm headers, bias, darks
and flats) at several numbers of lights and frame sizes, runs ``nightpipe run`` on each in a fresh
process on a warm numba cache, and measures wall time, CPU time (user + system) and peak resident
memory of that process alone (``os.wait4``). It then fits ``t = a * n**k`` (the exponent ``k``) and
``t = fixed + per_frame * n`` over the frame counts, ``t = a * pixels**k`` over the sizes, and
extrapolates the largest night that fits in the machine's memory from the growth of the peak
memory with frames.

Usage: ``python benchmarks/bench_scaling.py [--quick] [--frames 35 71 142] [--sizes 1024 2048 4096]
[--thousand]``. The default grid is 35, 71 and 142 lights of 1024² and 35 lights of 1024², 2048²
and 4096²; ``--quick`` is 20, 40 and 80 lights of 512² and 20 lights of 512², 1024² and 2048².
``--thousand`` adds one night of 1,000 lights of 2048² (about 8 GB of raw frames, tens of minutes).
The floor printed beside each run is reading its raw frames once (the night's bytes over this
machine's measured read speed of those same files, page cache warm).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench_night import step_times
from harness import bench_parser, measure_process, read_floor

ROOT = Path(__file__).resolve().parents[1]
MEMORY_BYTES = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def simulate(folder: Path, lights: int, size: int) -> Path:
    """The demo night of ``lights`` lights of ``size``² in ``folder`` (its settings file returned)."""
    code = (
        "import sys; from pathlib import Path; from nightpipe.pipeline.demo import prepare_demo; "
        "prepare_demo(Path(sys.argv[1]), size=int(sys.argv[2]), n_lights=int(sys.argv[3]))"
    )
    subprocess.run([sys.executable, "-c", code, str(folder), str(size), str(lights)], check=True)
    return folder / "nightpipe.toml"


def run_night(config: Path, raw: Path) -> dict[str, Any]:
    """``nightpipe run`` of one night in its own process: wall, CPU, peak RSS, exit code, steps."""
    cmd = [sys.executable, "-m", "nightpipe.cli.app", "-q", "-c", str(config), "run", str(raw)]
    run = measure_process(cmd)
    run["steps"] = step_times(config.parent / "nightpipe.sqlite")
    if run["exit"] in (0, 1):
        run["stderr"] = ""
    return run


def exponent(x: np.ndarray, y: np.ndarray) -> float:
    """Slope of ``log y`` against ``log x`` (least squares)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def linear(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of ``y = a + b x`` (least squares)."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def one_night(work: Path, lights: int, size: int) -> dict[str, Any]:
    """Simulate, measure the read floor, and run one night; its figures."""
    folder = work / f"n{lights}-s{size}"
    config = simulate(folder, lights, size)
    floor_s, nbytes = read_floor(folder / "raw")
    load = os.getloadavg()[0]
    run = run_night(config, folder / "raw")
    run.update(lights=lights, size=size, raw_mb=round(nbytes / 1e6, 1), read_floor_s=round(floor_s, 3))
    run["load"] = [round(load, 1), round(os.getloadavg()[0], 1)]
    print(
        f"{lights:5d} lights x {size}²: wall {run['wall_s']:7.1f} s, cpu {run['cpu_s']:7.1f} s, "
        f"peak {run['peak_mb']:7.0f} MB, exit {run['exit']}; raw {run['raw_mb']:.0f} MB, "
        f"read floor {floor_s:.2f} s (ratio {run['wall_s'] / max(floor_s, 1e-9):.0f}x); "
        f"load {run['load'][0]} -> {run['load'][1]}",
        flush=True,
    )
    if run["stderr"]:
        print(run["stderr"])
    return run


def summarise(by_frames: list[dict[str, Any]], by_size: list[dict[str, Any]]) -> dict[str, Any]:
    """Exponents, the fixed and per-frame costs, and the largest night that fits in memory."""
    n = np.array([r["lights"] for r in by_frames], float)
    px = np.array([r["size"] ** 2 for r in by_size], float)
    out: dict[str, Any] = {}
    for key in ("wall_s", "cpu_s"):
        t_n = np.array([r[key] for r in by_frames], float)
        t_px = np.array([r[key] for r in by_size], float)
        fixed, per_frame = linear(n, t_n)
        out[key] = {
            "exponent_frames": exponent(n, t_n),
            "fixed_s": fixed,
            "per_frame_s": per_frame,
            "exponent_pixels": exponent(px, t_px),
        }
    rss_fixed, rss_per_frame = linear(n, np.array([r["peak_mb"] for r in by_frames], float))
    out["peak_mb"] = {"fixed_mb": rss_fixed, "per_frame_mb": rss_per_frame}
    usable_mb = MEMORY_BYTES / 2**20
    out["largest_night_frames"] = int((usable_mb - rss_fixed) / rss_per_frame) if rss_per_frame > 0 else None
    out["memory_mb"] = round(usable_mb)
    return out


def main() -> int:
    parser = bench_parser(__doc__, "20/40/80 lights of 512², sizes 512-2048")
    parser.add_argument("--frames", type=int, nargs="+", help="numbers of lights (at the smallest size)")
    parser.add_argument("--sizes", type=int, nargs="+", help="frame sizes (at the fewest lights)")
    parser.add_argument("--thousand", action="store_true", help="also one night of 1,000 lights of 2048²")
    parser.add_argument("--work", type=Path, help="folder for the nights (default: a temporary one)")
    args = parser.parse_args()
    frames = args.frames or ([20, 40, 80] if args.quick else [35, 71, 142])
    sizes = args.sizes or ([512, 1024, 2048] if args.quick else [1024, 2048, 4096])
    with tempfile.TemporaryDirectory(prefix="nightpipe-scaling-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        warm = one_night(work, min(frames), min(sizes))  # compiles the kernels once (not counted)
        print(f"(warm-up run above not counted: {warm['wall_s']} s)")
        by_frames = [one_night(work / "frames", n, min(sizes)) for n in frames]
        by_size = [by_frames[0]] + [one_night(work / "sizes", min(frames), s) for s in sizes[1:]]
        thousand = one_night(work / "thousand", 1000, 2048) if args.thousand else None
    result = summarise(by_frames, by_size)
    for key in ("wall_s", "cpu_s"):
        r = result[key]
        print(
            f"{key[:-2]}: exponent in frames {r['exponent_frames']:.2f}, "
            f"in pixels {r['exponent_pixels']:.2f} "
            f"(want 1.0 or less); night = {r['fixed_s']:.1f} s fixed + {r['per_frame_s']:.3f} s per frame "
            f"of {min(sizes)}²"
        )
    mem = result["peak_mb"]
    print(
        f"peak memory = {mem['fixed_mb']:.0f} MB + {mem['per_frame_mb']:.2f} MB per frame of {min(sizes)}²: "
        f"the largest night in {result['memory_mb']} MB is about {result['largest_night_frames']} frames"
    )
    verdict = all(result[k]["exponent_frames"] <= 1.1 for k in ("wall_s", "cpu_s"))
    print(f"linear in frames (cpu and wall exponent <= 1.1): {'PASS' if verdict else 'FAIL'}")
    verdict = result["cpu_s"]["exponent_pixels"] <= 1.1
    print(f"linear in pixels (cpu exponent <= 1.1): {'PASS' if verdict else 'FAIL'}")
    folder = ROOT / "bench-results"
    folder.mkdir(exist_ok=True)
    doc = {"by_frames": by_frames, "by_size": by_size, "thousand": thousand, "summary": result}
    (folder / "scaling.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps({"summary": result}))
    failed = [
        r for r in [warm, *by_frames, *by_size, *([thousand] if thousand else [])] if r["exit"] not in (0, 1)
    ]
    for r in failed:
        print(f"night of {r['lights']} lights x {r['size']}² failed: exit {r['exit']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
