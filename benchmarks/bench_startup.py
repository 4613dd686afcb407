"""Benchmark of the command line's start-up: ``nightpipe --help`` and ``nightpipe run --help`` (issue 22).

Usage::

    .venv/bin/python benchmarks/bench_startup.py [--quick] [--repeats 15]

Each measurement is the wall time of a fresh ``python -m nightpipe.cli.app ... --help``
process, from its start to its exit, as a user at a prompt sees it (the median of
``--repeats`` runs, interleaved with the floor so that the machine's load hits both alike).
The floor is the start-up of the same interpreter doing nothing (``python -c pass``): what no
command line can beat. The target of issue 22 is 0.5 s, and no import of the heavy libraries
(astropy, numba, dask, scipy, matplotlib) for a help text; which of them ``--help`` imports is
read from ``python -X importtime``. Results go to ``bench-results/startup.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
TARGET_S = 0.5
HEAVY = ("astropy", "numba", "dask", "distributed", "scipy", "matplotlib")
COMMANDS = {"nightpipe --help": ["--help"], "nightpipe run --help": ["run", "--help"]}


def wall(args: list[str]) -> float:
    """Seconds from the start of ``python args...`` to its exit."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def imported_packages(args: list[str]) -> list[str]:
    """The top-level packages ``python -X importtime args...`` imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(names)


def main() -> int:
    parser = bench_parser(__doc__, "5 repeats")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    repeats = 5 if args.quick else max(args.repeats, 1)
    cli = ["-m", "nightpipe.cli.app"]
    for command in COMMANDS.values():  # warm the file cache and the byte-code
        wall([*cli, *command])
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    floor: list[float] = []
    loads = [os.getloadavg()[0]]
    for _ in range(repeats):
        floor.append(wall(["-c", "pass"]))
        for name, command in COMMANDS.items():
            times[name].append(wall([*cli, *command]))
    loads.append(os.getloadavg()[0])
    floor_s = statistics.median(floor)
    print(f"{'measurement':<22} {'ours s':>7} {'target s':>8} {'floor s':>7} {'/target':>7} {'/floor':>7}")
    results = {}
    for name, samples in times.items():
        ours = statistics.median(samples)
        heavy = [p for p in imported_packages([*cli, *COMMANDS[name]]) if p in HEAVY]
        results[name] = {"median_s": ours, "min_s": min(samples), "max_s": max(samples), "heavy": heavy}
        ratios = f"{ours / TARGET_S:7.2f} {ours / floor_s:7.1f}"
        print(f"{name:<22} {ours:7.3f} {TARGET_S:8.3f} {floor_s:7.3f} {ratios}")
    print(f"floor: python -c pass {floor_s:.3f} s (median of {repeats})")
    print(f"load average during the run: {loads[0]:.1f} -> {loads[1]:.1f} on {os.cpu_count()} cores")
    for name, result in results.items():
        fast = result["median_s"] < TARGET_S
        print(f"{'PASS' if fast else 'FAIL'}: {name} in < {TARGET_S} s: {result['median_s']:.3f} s")
        light = not result["heavy"]
        what = ", ".join(result["heavy"]) or "none of " + ", ".join(HEAVY)
        print(f"{'PASS' if light else 'FAIL'}: {name} imports no heavy library: {what}")
    RESULTS.mkdir(exist_ok=True)
    summary = {
        "commands": results,
        "floor_s": floor_s,
        "target_s": TARGET_S,
        "repeats": repeats,
        "load_average": loads,
        "cpus": os.cpu_count(),
    }
    (RESULTS / "startup.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
