"""The HAT-P-32 night after a meridian flip (issue 23): light-curve quality against the original.

Copies the 142 raw frames of ../shared/data/hatp32-microobservatory to a temporary folder,
turns the data of every frame after the middle by 180 degrees (``np.rot90(data, 2)``, the raw
integers and header untouched otherwise) and sets ``PIERSIDE`` as mounts write it ('EAST'
before, 'WEST' after), then runs ``nightpipe run`` on the original and on the flipped copy
(each in a fresh output folder and database) and compares their light curves: comparison stars
used, frames dropped, per-frame residual scatter in each half of the night, Rp/Rs and the
mid-time with their errors. The reference figure is the original night's; the target is a
flipped-night scatter within 10 % of it in both halves.

Usage: ``python benchmarks/bench_flip.py [--quick] [--work DIR]`` (``--quick``: 400 emcee steps
instead of the configured 1,500, for both runs; ``--work``: keep the flipped copy and both runs'
products there). The data folder is ../shared/data unless ``NIGHTPIPE_SHARED_DATA`` says otherwise.
Writes bench-results/flip.json.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from harness import bench_parser, nightpipe_command

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NIGHTPIPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
NIGHT = SHARED / "hatp32-microobservatory"
CONFIG = ROOT / "examples" / "hatp32.toml"
SCATTER_TOLERANCE = 1.10  # flipped scatter within 10 % of the original's


def flipped_copy(src: Path, dst: Path) -> tuple[int, str]:
    """Copy the night's lights into ``dst``, those after the middle turned by 180 degrees; returns
    the number of flipped frames and the name of the first one."""
    dst.mkdir(parents=True, exist_ok=True)
    paths = sorted(src.glob("*.FITS"))
    middle = len(paths) // 2
    for i, path in enumerate(paths):
        with fits.open(path, do_not_scale_image_data=True) as hdul:
            hdu = hdul[0]
            data = np.asarray(hdu.data)
            if i >= middle:
                data = np.ascontiguousarray(np.rot90(data, 2))
            header = hdu.header.copy()
            header["PIERSIDE"] = ("WEST" if i >= middle else "EAST", "side of the pier (benchmark flip)")
            fits.PrimaryHDU(data, header).writeto(dst / path.name, output_verify="silentfix")
    return len(paths) - middle, paths[middle].name


def _fit_summary(out: Path) -> dict[str, Any]:
    fits_json = sorted((out / "lightcurves").rglob("*_fit.json"))
    csvs = [p for p in (out / "lightcurves").rglob("*.csv")]
    if not fits_json or not csvs:
        return {}
    fit = json.loads(fits_json[0].read_text())
    with csvs[0].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {"fit": fit, "rows": rows}


def half_scatter(rows: list[dict[str, str]], frames: list[str], first: str) -> tuple[float, float]:
    """Residual scatter (std of detrended flux minus model, %) of the used points before and
    from the frame named ``first`` (``frames``: the frame of each row)."""
    res = np.array([float(r["detrended_flux_T1"]) - float(r["model_T1"]) for r in rows])
    used = np.array([r["used_in_fit"] == "1" for r in rows]) & np.isfinite(res)
    stem = first.split(".", maxsplit=1)[0]
    late = np.array([Path(f).name.split(".", maxsplit=1)[0] >= stem for f in frames])
    before = used & ~late
    after = used & late
    return float(100 * np.std(res[before])), float(100 * np.std(res[after]))


def _err(param: dict[str, float]) -> float:
    """The symmetric error of a fitted parameter: the mean of its lower and upper errors."""
    return 0.5 * (float(param["minus"]) + float(param["plus"]))


def run_night(raw: Path, work: Path, settings: list[str]) -> dict[str, Any]:
    """``nightpipe run`` on ``raw`` into ``work``; the light-curve figures of HAT-P-32."""
    out, db = work / "out", f"sqlite:///{work / 'db.sqlite'}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: nothing kept from an earlier one
    (work / "db.sqlite").unlink(missing_ok=True)
    cmd = nightpipe_command(CONFIG, out, db, "run", str(raw), settings=settings)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    got = _fit_summary(out)
    if proc.returncode not in (0, 3) or not got:
        raise RuntimeError(f"nightpipe run on {raw} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    fit, rows = got["fit"], got["rows"]
    params = fit["params"]
    return {
        "wall_s": round(wall, 1),
        "exit": proc.returncode,
        "comparisons": len(fit["comparisons"]["stars"]),
        "dropped": len(fit.get("dropped_frames", [])),
        "dropped_frames": fit.get("dropped_frames", []),
        "n_used": fit["n_used"],
        "rp_rs": params["rp_rs"]["median"],
        "rp_rs_err": _err(params["rp_rs"]),
        "tc": params["tc"]["median"],
        "tc_err_min": _err(params["tc"]) * 1440.0,
        "rms_pct": 100 * fit["rms"],
        "detrend": fit["detrend"]["vectors"],
        "rows": rows,
        "frames": fit["meta"]["frames"],
    }


def main() -> int:
    parser = bench_parser(__doc__, "400 emcee steps per walker instead of 1,500")
    parser.add_argument("--work", type=Path, help="keep the copies and products in this folder")
    args = parser.parse_args()
    if not NIGHT.is_dir():
        print(f"skipped: {NIGHT} not found")
        return 0
    settings = ["timeseries.steps=400"] if args.quick else []
    load_start = os.getloadavg()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nightpipe-flip-") as scratch:
        tmp = args.work or Path(scratch)
        raw_flip = Path(tmp, "raw-flipped", NIGHT.name)
        for name in ("exotic-reference",):  # same folder layout as the original
            if (NIGHT / name).is_dir():
                shutil.copytree(NIGHT / name, raw_flip / name)
        n_flipped, first = flipped_copy(NIGHT, raw_flip)
        results["original"] = run_night(NIGHT, Path(tmp, "original"), settings)
        results["flipped"] = run_night(raw_flip, Path(tmp, "flipped"), settings)
    load_end = os.getloadavg()
    for key in ("original", "flipped"):  # halves split at the first flipped frame (names sort by time)
        run = results[key]
        run["scatter_halves_pct"] = half_scatter(run.pop("rows"), run.pop("frames"), first)
    ref, ours = results["original"], results["flipped"]
    print(f"flipped {n_flipped} of 142 frames from {first} (180 degrees, PIERSIDE EAST -> WEST)")
    print(f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end (1 min)")
    for label, k in (
        ("comparison stars", "comparisons"),
        ("frames dropped", "dropped"),
        ("points fitted", "n_used"),
    ):
        print(f"{label}: flipped {ours[k]}, original {ref[k]}")
    for half, i in (("first half", 0), ("second half", 1)):
        a, b = ours["scatter_halves_pct"][i], ref["scatter_halves_pct"][i]
        print(f"per-frame scatter, {half}: flipped {a:.3f} %, original {b:.3f} %, ratio {a / b:.3f}")
    print(
        f"per-frame scatter, whole night: flipped {ours['rms_pct']:.3f} %, original {ref['rms_pct']:.3f} %, "
        f"ratio {ours['rms_pct'] / ref['rms_pct']:.3f}"
    )
    for run, label in ((ours, "flipped"), (ref, "original")):
        print(
            f"{label}: Rp/Rs {run['rp_rs']:.4f} +- {run['rp_rs_err']:.4f}, Tmid {run['tc']:.5f} +- "
            f"{run['tc_err_min']:.2f} min, detrend {run['detrend']}, wall {run['wall_s']} s"
        )
    dtc = (ours["tc"] - ref["tc"]) * 1440.0
    print(f"Tmid difference {dtc:+.2f} min, error ratio {ours['tc_err_min'] / ref['tc_err_min']:.2f}")
    targets = [
        (
            "same comparison count within 20 %",
            abs(ours["comparisons"] - ref["comparisons"]) <= 0.2 * ref["comparisons"],
        ),
        ("no more frames dropped than the original", ours["dropped"] <= ref["dropped"]),
        (
            "flipped scatter within 10 % of the original in both halves",
            all(
                a <= SCATTER_TOLERANCE * b
                for a, b in zip(ours["scatter_halves_pct"], ref["scatter_halves_pct"], strict=True)
            ),
        ),
        ("Rp/Rs within 1 sigma of the original", abs(ours["rp_rs"] - ref["rp_rs"]) <= ref["rp_rs_err"]),
        ("Tmid within 1 sigma of the original", abs(dtc) <= ref["tc_err_min"]),
    ]
    for name, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    results["targets"] = {name: ok for name, ok in targets}
    results["load"] = {"start": load_start, "end": load_end}
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "flip.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
