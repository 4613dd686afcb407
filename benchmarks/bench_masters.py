"""Masters as a user runs them: ``nightpipe scan`` + ``nightpipe masters`` as whole processes, vs ccdproc.

Issue 22 wants a master bias of 40 frames of 2048² (the simulator's bias frames, uint16) in at most
2 s from the command line, within 3x of reading the files. Both sides run as fresh processes, so
start-up and imports count: ours is the two commands a user types (scan into a new SQLite
database, then build the masters with their plot); the peer is a script doing the same with
ccdproc (``ImageFileCollection`` for the headers, ``combine`` with a median and one sigma-clip of
median/MAD-std, the master written to FITS). The floors, measured in the same run: reading the
files once (page cache warm) and the start-up of an empty Python (``python -c pass``).

Usage: ``python benchmarks/bench_masters.py [--quick] [--frames N] [--size S] [--no-peer]``
(``--quick``: 10 frames of 1024²).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import bench_parser, measure_process, read_floor

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 2.0
TARGET_FLOOR_RATIO = 3.0

PEER = """
import sys, warnings
import numpy as np
import ccdproc
from astropy.stats import mad_std
folder, out = sys.argv[1], sys.argv[2]
files = ccdproc.ImageFileCollection(folder).files_filtered(imagetyp="Bias Frame", include_path=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    master = ccdproc.combine(files, method="median", sigma_clip=True, sigma_clip_low_thresh=3,
                             sigma_clip_high_thresh=3, sigma_clip_func=np.ma.median,
                             sigma_clip_dev_func=mad_std, unit="adu", dtype=np.float32)
    master.write(out, overwrite=True)
"""


def make_bias(folder: Path, frames: int, size: int) -> Path:
    """The simulator's ``frames`` bias frames of ``size``² (uint16, MaxIm headers) in ``folder``."""
    cmd = [sys.executable, "-m", "nightpipe.cli.app", "-q", "simulate", str(folder)]
    cmd += ["--lights", "0", "--bias", str(frames), "--darks", "0", "--flats", "0", "--size", str(size)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return folder


def ours(raw: Path, work: Path) -> dict[str, Any]:
    """``nightpipe scan`` then ``nightpipe masters`` into a fresh output folder, each measured."""
    base = [sys.executable, "-m", "nightpipe.cli.app", "-q", "--output", str(work)]
    scan = measure_process([*base, "scan", str(raw)])
    masters = measure_process([*base, "masters"])
    built = sorted((work / "masters").glob("bias*.fits"))
    return {
        "scan": scan,
        "masters": masters,
        "wall_s": scan["wall_s"] + masters["wall_s"],
        "cpu_s": scan["cpu_s"] + masters["cpu_s"],
        "peak_mb": max(scan["peak_mb"], masters["peak_mb"]),
        "built": [p.name for p in built],
        "ok": scan["exit"] == 0 and masters["exit"] == 0 and len(built) == 1,
    }


def main() -> int:
    parser = bench_parser(__doc__, "10 frames of 1024²")
    parser.add_argument("--frames", type=int, help="bias frames (default 40)")
    parser.add_argument("--size", type=int, help="frame side in pixels (default 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of our side (the median is kept)")
    parser.add_argument("--no-peer", action="store_true", help="skip ccdproc (tens of seconds)")
    args = parser.parse_args()
    frames = args.frames or (10 if args.quick else 40)
    size = args.size or (1024 if args.quick else 2048)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="nightpipe-masters-") as tmp:
        raw = make_bias(Path(tmp, "raw"), frames, size)
        floor_s, nbytes = read_floor(raw)
        python = measure_process([sys.executable, "-c", "pass"])
        measure_process([sys.executable, "-m", "nightpipe.cli.app", "-q", "doctor", "--warm"])
        runs = [ours(raw, Path(tmp, f"out{k}")) for k in range(args.repeats)]
        peer = None
        if not args.no_peer:
            peer = measure_process([sys.executable, "-c", PEER, str(raw), str(Path(tmp, "peer.fits"))])
    runs.sort(key=lambda r: r["wall_s"])
    best = runs[len(runs) // 2]
    load1 = os.getloadavg()[0]
    print(f"{frames} bias frames of {size}² ({nbytes / 1e6:.0f} MB), load {load0:.1f} -> {load1:.1f}")
    print(
        f"ours (median of {len(runs)}): scan {best['scan']['wall_s']:.2f} s + masters "
        f"{best['masters']['wall_s']:.2f} s = {best['wall_s']:.2f} s wall, {best['cpu_s']:.2f} s CPU, "
        f"{best['peak_mb']:.0f} MB peak; built {best['built']}"
    )
    print(f"floors: reading the files {floor_s:.3f} s, `python -c pass` {python['wall_s']:.3f} s")
    if peer is not None:
        print(
            f"ccdproc script: {peer['wall_s']:.2f} s wall, {peer['cpu_s']:.2f} s CPU, "
            f"{peer['peak_mb']:.0f} MB peak, exit {peer['exit']}: "
            f"ours {peer['wall_s'] / best['wall_s']:.1f}x faster (CPU {peer['cpu_s'] / best['cpu_s']:.1f}x)"
        )
    floor_ratio = best["wall_s"] / max(floor_s, 1e-9)
    print(f"ours / reading the files: {floor_ratio:.0f}x")
    if frames == 40 and size == 2048:
        verdict = "PASS" if best["ok"] and best["wall_s"] <= TARGET_S else "FAIL"
        print(f"scan + masters <= {TARGET_S:.0f} s wall: {verdict}")
        verdict = "PASS" if floor_ratio <= TARGET_FLOOR_RATIO else "FAIL"
        print(f"within {TARGET_FLOOR_RATIO:.0f}x of reading the files: {verdict}")
    doc = {"frames": frames, "size": size, "bytes": nbytes, "read_floor_s": floor_s, "python_s": python}
    doc.update(ours=runs, peer=peer, load=[load0, load1])
    folder = ROOT / "bench-results"
    folder.mkdir(exist_ok=True)
    (folder / "masters.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps({"ours_wall_s": best["wall_s"], "peer": peer and peer["wall_s"], "floor_s": floor_s}))
    return 0 if best["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
