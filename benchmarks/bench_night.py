"""The whole HAT-P-32 night, raw folder to fitted transit and report, serial and with 2 workers.

Runs ``nightpipe run`` on ../shared/data/hatp32-microobservatory (142 frames) in a fresh
output folder, in a subprocess, and measures its wall time and CPU time (user + system of
the process and its children). The peers cannot run here offline (EXOTIC and prose need
online services); their figures on this machine are quoted from ../shared/PERFORMANCE.md.

Usage: ``python benchmarks/bench_night.py [--quick]`` (``--quick``: serial run only).
"""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import bench_parser, nightpipe_command

ROOT = Path(__file__).resolve().parents[1]
NIGHT = ROOT.parent / "shared" / "data" / "hatp32-microobservatory"
CONFIG = ROOT / "examples" / "hatp32.toml"
PEERS = {"EXOTIC 4.3.1": (12.7 * 60, 445.0), "prose 3.3.4": (6 * 60, 195.0)}
TARGET_WALL_S = 60.0


def step_times(db_path: Path) -> dict[str, dict[str, float]]:
    """Wall and CPU time of each step as the runner recorded them (CPU of the main process only)."""
    if not db_path.is_file():
        return {}
    with sqlite3.connect(db_path) as con:
        rows = con.execute(
            "SELECT step, seconds, details FROM step_runs WHERE step LIKE 'night:%' ORDER BY id"
        ).fetchall()
    times: dict[str, dict[str, float]] = {}
    for step, seconds, details in rows:
        cpu = json.loads(details or "{}").get("cpu_s") if details else None
        times[step.removeprefix("night:")] = {
            "wall_s": round(float(seconds or 0.0), 1),
            "cpu_s": round(float(cpu or 0.0), 1),
        }
    return times


def run_once(workers: int) -> dict[str, object]:
    """One full run in a fresh output folder; returns wall, CPU and the exit code."""
    with tempfile.TemporaryDirectory(prefix="nightpipe-bench-") as tmp:
        out, db = Path(tmp, "out"), f"sqlite:///{Path(tmp, 'db.sqlite')}"
        cmd = nightpipe_command(CONFIG, out, db, "run", str(NIGHT), settings=[f"parallel.workers={workers}"])
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        fits = sorted(Path(tmp, "out", "lightcurves").rglob("*fit*.json"))
        fit = json.loads(fits[0].read_text()) if fits else None
        return {
            "workers": workers,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "exit": proc.returncode,
            "steps": step_times(Path(tmp, "db.sqlite")),
            "fit": fit,
            "stderr": proc.stderr[-2000:] if proc.returncode not in (0, 1) else "",
        }


def main() -> int:
    parser = bench_parser(__doc__, "serial run only")
    args = parser.parse_args()
    if not NIGHT.is_dir():
        print(f"skipped: {NIGHT} not found")
        return 0
    runs = [run_once(0)] + ([] if args.quick else [run_once(2)])
    for run in runs:
        print(
            f"hatp32 night 142x650x500 workers={run['workers']}: wall {run['wall_s']} s, "
            f"cpu {run['cpu_s']} s, exit {run['exit']}"
        )
        if run["stderr"]:
            print(run["stderr"])
        steps = run.get("steps") or {}
        assert isinstance(steps, dict)
        print(
            "  per step (wall / main-process cpu, s): "
            + ", ".join(f"{name} {t['wall_s']}/{t['cpu_s']}" for name, t in steps.items())
        )
        for name, (wall, cpu) in PEERS.items():
            print(
                f"  vs {name} (quoted): wall {wall:.0f} s -> {wall / float(run['wall_s']):.1f}x, "
                f"cpu {cpu:.0f} s -> {cpu / max(float(run['cpu_s']), 1e-9):.1f}x"
            )
        verdict = "PASS" if float(run["wall_s"]) < TARGET_WALL_S and run["exit"] in (0, 1) else "FAIL"
        print(
            f"whole night workers={run['workers']}: {run['wall_s']} s wall "
            f"(target {TARGET_WALL_S:.0f} s) {verdict}"
        )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "night.json").write_text(json.dumps({"runs": runs, "peers_quoted": PEERS}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
