"""Benchmark: TESS pixel files to light curves, nightpipe vs lightkurve, side by side.

Measurements (each side in its own subprocess, so the peak RSS is its own; times are the
median of several repeats inside that process, the import excluded):

* ``spoc``: read a SPOC-style target pixel file and sum the pipeline aperture
  (nightpipe ``read_pixel_file`` + ``photometer``; lightkurve ``read`` + ``to_lightcurve``);
* ``tesscut``: read a TESScut-style cut-out, make a 3-sigma threshold aperture, subtract the
  median background of the faint pixels (lightkurve ``create_threshold_mask`` +
  ``estimate_background``).

The files are synthetic (``nightpipe.tess.synthetic``) at full-sector sizes. Then the
targets of issue 11 are checked as PASS/FAIL lines on the real WASP-126 TPF (times and
SPOC-aperture fluxes against lightkurve) and on a synthetic TPF with an injected transit
(depth and mid-time within errors). Writes ``bench-results/tess.json``.

``--sector`` (issue 22) instead measures ``nightpipe tess`` on a synthetic TESS sector
light-curve file (27 days at 2 minutes, a transit every 3.3 days: 19,440 cadences, 8 transits):
the whole command as a process (wall, CPU, load), and in one worker the joint fit's posterior
sampling against a peer sampled the usual way (EXOTIC/juliet style: ``batman.TransitModel``
called once per walker, emcee not vectorised, a fixed 64 x 1,500 chain) on the same windows,
with the ratio and a floor (one model evaluation x the evaluations the stopping rule needs at
least: 64 walkers x 20 autocorrelation times).

Usage: ``.venv/bin/python benchmarks/bench_tess.py [--quick] [--sector]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
REAL_TPF = ROOT.parent / "shared" / "data" / "tess-tpf" / "tess25155310-s01-first-cadences.fits.gz"


def worker(side: str, case: str, path: str, repeats: int) -> None:
    """Run one case ``repeats`` times in this process; print times, peak RSS and a checksum as JSON."""
    warnings.simplefilter("ignore")
    times = []
    flux = np.zeros(0)
    if side == "ours":
        from nightpipe.tess.photometry import photometer
        from nightpipe.tess.readers import read_pixel_file

        for _ in range(repeats):
            start = time.perf_counter()
            pixels = read_pixel_file(path)
            if case == "spoc":
                result = photometer(pixels, aperture="pipeline", background="file", quality_bitmask="none")
            else:
                result = photometer(pixels, aperture="threshold", background="pixels", quality_bitmask="none")
            flux = result.flux
            times.append(time.perf_counter() - start)
    else:
        import lightkurve as lk

        for _ in range(repeats):
            start = time.perf_counter()
            tpf = lk.read(path, quality_bitmask="none")
            if case == "spoc":
                lc = tpf.to_lightcurve(aperture_mask="pipeline")
                flux = np.asarray(lc.flux.value, dtype=float)
            else:
                mask = tpf.create_threshold_mask(threshold=3)
                sky = ~tpf.create_threshold_mask(threshold=0.001, reference_pixel=None)
                bkg = np.asarray(tpf.estimate_background(aperture_mask=sky).flux.value, dtype=float)
                lc = tpf.to_lightcurve(aperture_mask=mask)
                flux = np.asarray(lc.flux.value, dtype=float) - bkg * mask.sum()
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"times": times, "peak_mb": peak_mb, "flux": [float(np.nansum(flux)), int(flux.size)]}))


def run_side(side: str, case: str, path: Path, repeats: int) -> dict[str, object]:
    return run_json_child(__file__, "--worker", side, case, str(path), str(repeats))


def check_targets(tmp: Path) -> list[tuple[str, bool, str]]:
    """The issue's done-criteria, checked again here (they are also unit tests)."""
    warnings.simplefilter("ignore")
    import lightkurve as lk

    from nightpipe.tess.photometry import photometer
    from nightpipe.tess.readers import read_pixel_file
    from nightpipe.tess.synthetic import InjectedTransit, write_synthetic_tpf
    from nightpipe.timeseries.transit import FitOptions, TransitPriors, fit_transit

    out = []
    tpf = read_pixel_file(REAL_TPF)
    peer = lk.read(str(REAL_TPF), quality_bitmask="none")
    dt = float(np.max(np.abs(tpf.time_bjd - peer.time.jd))) * 86400.0
    name = "real TPF: 5 cadences, BJD_TDB = TIME + 2457000 = lightkurve"
    out.append(
        (name, tpf.n_cadences == 5 and dt < 1e-4, f"{tpf.n_cadences} cadences, max |dt| {dt * 1e6:.2f} us")
    )
    ours = photometer(tpf, quality_bitmask="none")
    theirs = np.asarray(peer.to_lightcurve(aperture_mask="pipeline").flux.value, dtype=float)
    rel = float(np.max(np.abs(ours.flux / theirs - 1)))
    name = "real TPF: SPOC aperture (9 px) flux = lightkurve"
    out.append((name, ours.meta["aperture_px"] == 9 and rel < 1e-6, f"max relative difference {rel:.1e}"))
    transit = InjectedTransit(2458325.62, 3.0, rp_rs=0.1, a_rs=10.0, inclination=88.0)
    truth = write_synthetic_tpf(
        tmp / "inj.fits", transit=transit, n_cadences=360, start_bjd=2458325.37, seed=11
    )
    lc = photometer(read_pixel_file(truth.path)).to_lightcurve()
    pri = TransitPriors(period=3.0, t0=transit.t0_bjd + 0.01, u=(transit.u1, transit.u2))
    fit = fit_transit(lc, pri, FitOptions(detrend=("time",), walkers=16, steps=400, seed=5, exptime_s=120))
    tc = fit.params["tc"]
    depth, depth_err = fit.extra["derived"]["depth"], fit.extra["derived"]["depth_err"]
    ok = abs(tc.median - transit.t0_bjd) < 3 * tc.err and abs(depth - transit.rp_rs**2) < 3 * depth_err
    detail = (
        f"depth {depth * 1e6:.0f} +- {depth_err * 1e6:.0f} ppm (injected {transit.rp_rs**2 * 1e6:.0f}), "
        f"tc {(tc.median - transit.t0_bjd) * 1440:+.2f} +- {tc.err * 1440:.2f} min"
    )
    out.append(("synthetic TPF: injected depth and mid-time recovered within 3 sigma", ok, detail))
    return out


def main() -> int:
    parser = bench_parser(__doc__, "smaller files, fewer repeats")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--sector", action="store_true", help="nightpipe tess on a sector light curve")
    parser.add_argument("--sector-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        side, case, path, repeats = args.worker
        worker(side, case, path, int(repeats))
        return 0
    if args.sector_worker:
        from tess_sector import sector_worker

        sector_worker(*args.sector_worker)
        return 0
    if args.sector:
        from tess_sector import bench_sector

        return bench_sector(args.quick, __file__, ROOT)
    from nightpipe.tess.synthetic import InjectedTransit, write_synthetic_tpf

    repeats = 3 if args.quick else 5
    n_spoc = 2000 if args.quick else 19000  # a 27-day sector at 2 minutes
    n_cut = 500 if args.quick else 3500  # a sector of 10-minute FFIs
    results: dict[str, object] = {"quick": args.quick, "measurements": [], "targets": []}
    rows = []
    with tempfile.TemporaryDirectory(prefix="nightpipe-bench-tess-") as tmpdir:
        tmp = Path(tmpdir)
        transit = InjectedTransit(2458326.0, 3.0)
        spoc = write_synthetic_tpf(tmp / "spoc.fits", transit=transit, n_cadences=n_spoc, seed=1)
        cut = write_synthetic_tpf(
            tmp / "cut.fits",
            transit=transit,
            n_cadences=n_cut,
            cadence_min=10.0,
            shape=(30, 30),
            tesscut=True,
            seed=2,
        )
        cases = {"spoc": (spoc.path, f"{n_spoc} x 11x11"), "tesscut": (cut.path, f"{n_cut} x 30x30")}
        head = ("case", "size", "ours s", "lightkurve s", "ratio", "ours MB", "lk MB")
        print("{:<9} {:<14} {:>9} {:>13} {:>7} {:>8} {:>8}".format(*head))
        for case, (path, size) in cases.items():
            ours = run_side("ours", case, path, repeats)
            peer = run_side("lightkurve", case, path, repeats)
            t_ours = statistics.median(ours["times"])  # type: ignore[arg-type]
            t_peer = statistics.median(peer["times"])  # type: ignore[arg-type]
            ratio = t_ours / t_peer
            agree = abs(ours["flux"][0] / peer["flux"][0] - 1)  # type: ignore[index]
            print(
                f"{case:<9} {size:<14} {t_ours:9.4f} {t_peer:13.4f} {ratio:7.2f} "
                f"{ours['peak_mb']:8.0f} {peer['peak_mb']:8.0f}   (summed flux agrees to {agree:.1e})"
            )
            rows.append(
                {
                    "case": case,
                    "size": size,
                    "ours_s": t_ours,
                    "lightkurve_s": t_peer,
                    "ratio": ratio,
                    "ours_peak_mb": ours["peak_mb"],
                    "lightkurve_peak_mb": peer["peak_mb"],
                    "flux_agreement": agree,
                }
            )
        results["measurements"] = rows
        targets = check_targets(tmp)
    for name, ok, detail in targets:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    results["targets"] = [{"target": n, "pass": ok, "detail": d} for n, ok, d in targets]
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "tess.json").write_text(json.dumps(results, indent=2))
    return 0 if all(ok for _, ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
