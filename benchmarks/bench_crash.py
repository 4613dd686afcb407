"""Crash campaign: ``nightpipe run`` killed with SIGKILL at random moments, rerun, compared.

A small simulated night (``prepare_demo``, 256x256, 14 lights: enough for the transit fit) is
run twice uninterrupted (the first fills the caches; the second's log gives every step's
duration); then, TRIALS times, a run in a fresh folder is killed with SIGKILL at a random moment
inside one step (trial i: step i mod n, in their order, at a uniform random time within that
step's duration after the log says it started), and rerun to its end. Every product of the
resumed run (files byte for byte, FITS card by card and pixel by pixel, database rows of every
table, per-frame step runs; ``tests/product_fingerprint.py``) is compared with the
uninterrupted run's. It counts the trials whose products differ, rows the resumed database holds
more often than the uninterrupted one, and temporary files left.

Usage: ``python benchmarks/bench_crash.py [--quick] [--trials N] [--seed S]``
(``--quick``: 4 trials). The last line is the figures as JSON.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fingerprint and the campaign's helpers

from crash_campaign import (  # noqa: E402
    duplicate_rows,
    fresh,
    kill_during,
    mismatches,
    products,
    run_to_end,
)

SIZE, LIGHTS = 256, 14
DONE = re.compile(r"\[(\w+)\] done in ([\d.]+) s")


def in_step(name: str, after_s: float) -> Callable[[Path], bool]:
    """True ``after_s`` seconds after the killed run's log says step ``name`` started."""
    started: list[float] = []

    def when(run: Path) -> bool:
        if not started and f"[{name}] starting" in (run / "killed.log").read_text():
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] >= after_s

    return when


def main() -> int:
    parser = bench_parser(__doc__, "4 trials instead of 20")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    trials = 4 if args.quick else args.trials
    rng = random.Random(args.seed)
    from nightpipe.pipeline.demo import prepare_demo

    with tempfile.TemporaryDirectory(prefix="bench-crash-") as scratch:
        work = args.keep or Path(scratch)
        root = work / "demo"
        root.mkdir(parents=True, exist_ok=True)
        _, raw = prepare_demo(root, size=SIZE, n_lights=LIGHTS)
        run = work / "run"
        sys.stdout.write(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
        # the first run fills the caches (compiled kernels, index files); the second one, with its
        # log, gives each step's duration: trial i is killed at a random moment inside step i mod n
        # (the steps in their order), so that every step is covered whatever the machine's load
        fresh(run)
        start = time.monotonic()
        proc = run_to_end(root, raw, run)
        first_wall = time.monotonic() - start
        first = products(run)
        fresh(run)
        start = time.monotonic()
        kill_during(root, raw, run, when=lambda _run: False)  # to its end, with its log
        wall = time.monotonic() - start
        reference = products(run)
        durations = [(m[1], float(m[2])) for m in DONE.finditer((run / "killed.log").read_text())]
        repeat = mismatches(first, reference)
        sys.stdout.write(
            f"uninterrupted runs: exit {proc.returncode}, {first_wall:.1f} s then {wall:.1f} s, "
            f"{len(repeat)} differences between the two; steps: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in durations)
            + "\n"
        )
        outcomes = []
        for trial in range(trials):
            name, seconds = durations[trial % len(durations)]
            at = rng.random() * seconds
            fresh(run)
            step = kill_during(root, raw, run, when=in_step(name, at))
            rerun = run_to_end(root, raw, run)
            resumed = products(run)
            lines = mismatches(reference, resumed)
            if rerun.returncode != proc.returncode:
                lines.append(f"exit {rerun.returncode} != {proc.returncode}: {rerun.stderr[-500:]}")
            outcome = {
                "trial": trial + 1,
                "aimed_at": f"{name} + {at:.2f} s",
                "step": step or "(finished first)",
                "mismatches": lines,
                "duplicates": duplicate_rows(reference, resumed),
                "leftovers": [str(p.relative_to(run)) for p in resumed.temporary],
            }
            outcomes.append(outcome)
            sys.stdout.write(
                f"trial {trial + 1:2d}: aimed at {name:>12} + {at:5.2f} s, killed in {outcome['step']:<12} "
                f"{len(lines)} mismatches, {outcome['duplicates']} duplicate rows, "
                f"{len(outcome['leftovers'])} leftovers\n"
            )
            for line in lines[:5]:
                sys.stdout.write(f"    {line}\n")
    figures = {
        "trials": trials,
        "mismatches": sum(1 for o in outcomes if o["mismatches"]),
        "duplicates": sum(int(str(o["duplicates"])) for o in outcomes),
        "leftovers": sum(len(o["leftovers"]) for o in outcomes),
        "steps_killed": dict(Counter(str(o["step"]) for o in outcomes)),
        "uninterrupted_s": round(wall, 1),
        "load_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    sys.stdout.write(
        f"trials {figures['trials']} / mismatches {figures['mismatches']} / "
        f"duplicates {figures['duplicates']} / leftovers {figures['leftovers']}\n"
    )
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
