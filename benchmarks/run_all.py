"""Run every benchmark of nightpipe (``make bench``) and gather their JSON results.

Each ``benchmarks/bench_<name>.py`` is run in its own process (so that peak-memory
figures are its own), prints its lines, and writes ``bench-results/<name>.json``. This
script then prints every PASS/FAIL target line together and writes
``bench-results/summary.json`` with the commit and the machine, to compare commits.

Usage: ``python benchmarks/run_all.py [--quick] [name ...]``
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from harness import bench_parser

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "bench-results"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = bench_parser(__doc__, "smaller inputs (CI)")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    RESULTS.mkdir(exist_ok=True)
    targets: list[str] = []
    failures = 0
    runs = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failures += 1
            sys.stdout.write(proc.stderr[-3000:])
        lines = [ln for ln in proc.stdout.splitlines() if " PASS" in ln or " FAIL" in ln]
        targets += [f"{script.stem}: {ln.strip()}" for ln in lines]
        runs.append(
            {
                "name": script.stem,
                "returncode": proc.returncode,
                "seconds": round(time.perf_counter() - start, 1),
                "targets": lines,
            }
        )
    print("\n=== targets ===")
    for line in targets:
        print(line)
    summary = {
        "commit": _commit(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "runs": runs,
        "results": {
            p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem != "summary"
        },
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\n{len(scripts)} benchmarks, {failures} crashed; results in {RESULTS}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
