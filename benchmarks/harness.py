"""What the benchmark scripts share: their command line and the processes they start.

* :func:`bench_parser`: the argument parser every ``bench_<name>.py`` starts from (``--quick``);
* :func:`run_json_child`: run a script again in a fresh Python process (one side of a
  measurement, so that its time and peak RSS are its own) and read the JSON it prints last;
* :func:`nightpipe_command`: the ``python -m nightpipe.cli.app`` command line of a run with a
  given configuration into a given output folder and database;
* :func:`measure_process`: wall, CPU and peak memory of one command run as its own process;
* :func:`read_floor`: the time to read a folder's FITS files once, page cache warm (a floor).

The scripts run as ``python benchmarks/bench_<name>.py``, which puts this folder on ``sys.path``:
they ``import harness``. Not a benchmark itself (``run_all.py`` runs ``bench_*.py`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def bench_parser(doc: str | None, quick_help: str, *, whole_doc: bool = False) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring ``doc`` (with ``whole_doc``:
    all of it, as written), with ``--quick`` (smaller inputs, as CI runs it) helped by ``quick_help``."""
    lines = (doc or "").splitlines()
    if whole_doc:
        parser = argparse.ArgumentParser(
            description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
    else:
        parser = argparse.ArgumentParser(description=lines[0] if lines else None)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def run_json_child(
    script: str | Path, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python script args...`` and return the JSON object on the last line of its output.

    ``env`` adds variables to this process's environment for the child. A child that exits
    with an error raises :class:`RuntimeError` with the command and the end of its stderr.
    """
    cmd = [sys.executable, str(script), *args]
    child_env = {**os.environ, **env} if env is not None else None
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=child_env)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(script).name} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def nightpipe_command(
    config: Path, output: Path, db_url: str, *args: str, settings: Sequence[str] = ()
) -> list[str]:
    """``python -m nightpipe.cli.app -q -c config -s paths.output=... -s database.url=... args...``:
    a quiet nightpipe run with ``config``, writing into ``output`` and ``db_url``; ``settings`` are
    further ``-s`` overrides (``"parallel.workers=2"``)."""
    cmd = [sys.executable, "-m", "nightpipe.cli.app", "-q", "-c", str(config)]
    for setting in (f"paths.output='{output}'", f"database.url='{db_url}'", *settings):
        cmd += ["-s", setting]
    return [*cmd, *args]


def measure_process(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` as one process and measure it alone (``os.wait4``): wall and CPU (user + system,
    its children included) seconds, peak resident memory in MB, exit code, the end of its stderr."""
    child_env = {**os.environ, **env} if env is not None else None
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_mb": round(usage.ru_maxrss / 1024.0, 1),
        "exit": proc.returncode,
        "stderr": stderr.decode(errors="replace")[-1500:],
    }


def read_floor(folder: Path) -> tuple[float, int]:
    """Seconds to read every FITS file in ``folder`` once (after a first pass fills the page
    cache) and their bytes."""
    files = sorted(folder.glob("*.fits"))
    nbytes = sum(len(p.read_bytes()) for p in files)
    start = time.perf_counter()
    for path in files:
        path.read_bytes()
    return time.perf_counter() - start, nbytes
