"""Benchmark: calibrating light frames with bias, scaled dark and flat, nightpipe vs ccdproc.

Every side reads the same raw uint16 files (BZERO = 32768, like camera output) from disk and
writes one product per frame:

- ``floor``: read each frame (astropy) and write a float32 science + UNCERT + MASK file of the
  same layout without computing anything: the I/O that any calibration must do;
- ``ours``: :func:`nightpipe.calib.calibrate.calibrate_frame` (cosmic rays off), i.e. the
  real per-frame path: read, bias, dark scaled by exposure, flat, uncertainty and mask,
  HISTORY, atomic write;
- ``ccdproc``: ``CCDData.read`` + ``ccd_process(master_bias, dark_frame, master_flat,
  dark_scale=True)`` + ``write``, frame by frame, without error propagation;
- ``ccdproc+err``: the same with ``error=True, gain, readnoise`` (what ours also does).

Each side runs in its own subprocess, so its peak RSS is its own. Prints one line per side,
the issue's targets as PASS/FAIL lines, and writes ``bench-results/calibrate.json``.

Usage: ``.venv/bin/python benchmarks/bench_calibrate.py [--quick] [--frames N] [--size N]``
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
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GAIN, READ_NOISE = 1.5, 9.0
DARK_EXPTIME, LIGHT_EXPTIME = 120.0, 60.0


def make_inputs(folder: Path, n: int, size: int, seed: int = 0) -> tuple[list[Path], dict[str, Path]]:
    """Write ``n`` raw light frames and bias/dark/flat masters of ``size x size``."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r2 = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (size / 2) ** 2
    flat = (1.0 - 0.1 * r2 + rng.normal(0, 0.01, (size, size))).astype(np.float32)
    flat /= np.median(flat)
    bias = (1000 + rng.normal(0, 3, (size, size))).astype(np.float32)
    dark = rng.gamma(2.0, 3.0, (size, size)).astype(np.float32)
    masters = {}
    for name, data in (("bias", bias), ("dark", dark), ("flat", flat)):
        path = folder / f"master_{name}.fits"
        err = 0.001 if name == "flat" else 0.5
        header = fits.Header({"EXPTIME": DARK_EXPTIME} if name == "dark" else {})
        fits.HDUList(
            [
                fits.PrimaryHDU(data, header=header),
                fits.ImageHDU(np.full(data.shape, err, np.float32), name="UNCERT"),
                fits.ImageHDU(np.zeros(data.shape, np.uint16), name="MASK"),
            ]
        ).writeto(path, overwrite=True)
        masters[name] = path
    sky = 300.0
    paths = []
    for i in range(n):
        path = folder / f"light_{i:03d}.fits"
        frame = bias + 0.5 * dark + flat * sky + rng.normal(0, 15, (size, size)).astype(np.float32)
        hdu = fits.PrimaryHDU(np.clip(frame, 0, 65535).astype(np.uint16))
        hdu.header["EXPTIME"] = LIGHT_EXPTIME
        hdu.header["IMAGETYP"] = "Light Frame"
        hdu.writeto(path, overwrite=True)
        paths.append(path)
    return paths, masters


def _floor(paths: list[Path], out: Path) -> tuple[list[float], list[float]]:
    from astropy.io import fits

    from nightpipe.calib.calibrated_io import write_calibrated
    from nightpipe.frames.fitsio import read_image

    times = []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        data, _ = read_image(path)
        write_calibrated(out / f"{i:03d}.fits", data, data, np.zeros(data.shape, np.uint16), fits.Header())
        times.append(time.perf_counter() - start)
    return times, []


def _ours(paths: list[Path], masters: dict[str, Path], out: Path) -> tuple[list[float], list[float]]:
    from nightpipe.calib.apply import ApplyParams, apply_calibration
    from nightpipe.calib.calibrate import FrameJob, MasterCache, MasterRef, calibrate_frame, master_arrays
    from nightpipe.config import load_settings
    from nightpipe.frames.fitsio import read_image

    settings = load_settings(
        None,
        overrides=[
            'calibration.cosmic_rays="off"',
            f"camera.gain={GAIN}",
            f"camera.read_noise={READ_NOISE}",
            'calibration.overscan="none"',
        ],
        environ={},
    )
    refs = {
        kind: MasterRef(kind, str(path), DARK_EXPTIME if kind == "dark" else None, False, kind)
        for kind, path in masters.items()
    }
    cache = MasterCache()

    def job(i: int, path: Path) -> FrameJob:
        return FrameJob(i, str(path), 0, "bench", LIGHT_EXPTIME, GAIN, refs, {}, out / f"{i:03d}.fits")

    warm = calibrate_frame(job(0, paths[0]), settings, cache)  # load the compiled kernel and masters
    if warm.status != "ok":
        raise SystemExit(f"ours failed: {warm.reason}")
    times = []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        outcome = calibrate_frame(job(i, path), settings, cache)
        times.append(time.perf_counter() - start)
        if outcome.status != "ok":
            raise SystemExit(f"ours failed: {outcome.reason}")
    # the arithmetic alone (bias, scaled dark, flat, uncertainty, flags), as ccd_process alone
    shape = read_image(paths[0])[0].shape
    arrays = master_arrays(refs, cache, (shape[0], shape[1]))
    params = ApplyParams(
        exptime=LIGHT_EXPTIME, gain=GAIN, read_noise=READ_NOISE, saturation=65535, nonlinear_level=60000
    )
    compute = []
    for path in paths:
        data, _ = read_image(path)
        start = time.perf_counter()
        apply_calibration(data, arrays, params, check_masters=False)
        compute.append(time.perf_counter() - start)
    return times, compute


def _ccdproc(
    paths: list[Path], masters: dict[str, Path], out: Path, error: bool
) -> tuple[list[float], list[float]]:
    import astropy.units as u
    import ccdproc
    from astropy.nddata import CCDData

    bias = CCDData.read(masters["bias"], unit="adu")
    dark = CCDData.read(masters["dark"], unit="adu")
    flat = CCDData.read(masters["flat"], unit="adu")
    times, compute = [], []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        ccd = CCDData.read(path, unit="adu")
        call = time.perf_counter()
        kwargs = {
            "error": True,
            "gain": GAIN * u.electron / u.adu,
            "readnoise": READ_NOISE * u.electron,
            "gain_corrected": False,
        }
        result = ccdproc.ccd_process(
            ccd,
            master_bias=bias,
            dark_frame=dark,
            master_flat=flat,
            dark_exposure=DARK_EXPTIME * u.s,
            data_exposure=LIGHT_EXPTIME * u.s,
            dark_scale=True,
            **(kwargs if error else {}),
        )
        compute.append(time.perf_counter() - call)
        result.write(out / f"{i:03d}.fits", overwrite=True)
        times.append(time.perf_counter() - start)
    return times, compute


def worker(side: str, folder: Path, n: int) -> None:
    """Run one side in this process; print per-frame times and peak RSS as JSON."""
    warnings.simplefilter("ignore")
    paths = sorted(folder.glob("light_*.fits"))[:n]
    masters = {k: folder / f"master_{k}.fits" for k in ("bias", "dark", "flat")}
    out = folder / f"out_{side}"
    out.mkdir(exist_ok=True)
    if side == "floor":
        times, compute = _floor(paths, out)
    elif side == "ours":
        times, compute = _ours(paths, masters, out)
    else:
        times, compute = _ccdproc(paths, masters, out, error=side == "ccdproc+err")
    shutil.rmtree(out, ignore_errors=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "compute": compute, "rss_mb": rss_mb}))


def run_side(side: str, folder: Path, n: int) -> dict[str, float]:
    """One side in a subprocess; its median and total time per frame and its peak RSS."""
    cmd = [sys.executable, __file__, "--worker", side, "--folder", str(folder), "--frames", str(n)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    times, compute = data["times"], data["compute"]
    return {
        "median_s": statistics.median(times),
        "total_s": sum(times),
        "compute_median_s": statistics.median(compute) if compute else float("nan"),
        "frames": len(times),
        "rss_mb": data["rss_mb"],
    }


def main() -> None:
    """Parse arguments, make the inputs, run every side and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 frames instead of 100")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.frames or (10 if args.quick else 100)
    if args.worker:
        worker(args.worker, Path(args.folder), n)
        return
    with tempfile.TemporaryDirectory(prefix="bench_calibrate_") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        make_inputs(folder, n, args.size)
        print(f"made {n} raw frames of {args.size}x{args.size} in {time.perf_counter() - start:.1f} s")
        results = {}
        for side in ("floor", "ours", "ccdproc", "ccdproc+err"):
            results[side] = run_side(side, folder, n)
            r = results[side]
            print(
                f"{side:12s} {args.size}x{args.size} x{r['frames']}: "
                f"median {r['median_s'] * 1000:7.1f} ms/frame, total {r['total_s']:6.1f} s, "
                f"peak RSS {r['rss_mb']:6.0f} MB"
                + (f", arithmetic alone {r['compute_median_s'] * 1000:6.1f} ms" if side != "floor" else ""),
                flush=True,
            )
    ours, floor = results["ours"]["total_s"], results["floor"]["total_s"]
    speedup = results["ccdproc"]["total_s"] / ours
    speedup_err = results["ccdproc+err"]["total_s"] / ours
    vs_floor = ours / floor
    compute = results["ccdproc"]["compute_median_s"] / results["ours"]["compute_median_s"]
    compute_err = results["ccdproc+err"]["compute_median_s"] / results["ours"]["compute_median_s"]
    print(f"ratio ccd_process call / our arithmetic {compute:.1f}x (with errors {compute_err:.1f}x)")
    print(f"ratio ccdproc/ours {speedup:.1f}x, ccdproc+err/ours {speedup_err:.1f}x")
    print(f"ratio ours/floor {vs_floor:.2f}")
    e2e = "at least 5x faster than ccdproc frame by frame, read+process+write"
    targets = {
        f"{e2e} (ccd_process without error propagation)": speedup >= 5,
        f"{e2e} (ccd_process with errors, as ours)": speedup_err >= 5,
        "arithmetic at least 5x faster than the ccd_process call (no error propagation)": compute >= 5,
        "within 2x of reading and writing the frames": vs_floor <= 2,
    }
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    out = ROOT / "bench-results" / "calibrate.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "size": args.size,
                "frames": n,
                "sides": results,
                "ccdproc_over_ours": speedup,
                "ccdproc_err_over_ours": speedup_err,
                "ours_over_floor": vs_floor,
                "ccd_process_call_over_our_arithmetic": compute,
                "ccd_process_err_call_over_our_arithmetic": compute_err,
                "targets": targets,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
