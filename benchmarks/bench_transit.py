"""Benchmark of the transit light-curve work (issue 10).

1. EXOTIC's published HAT-P-32 light curve (exotic-reference/sampledata.json) through the CSV
   mode: fitted Rp/Rs, mid-time and O-C, residual scatter, 10-min binned scatter against white
   noise, and the time of the posterior sampling against a plain batman.TransitModel + emcee
   likelihood (the usual way, one model call per walker) with the same walkers and steps.
2. The raw HAT-P-32 night (142 frames, 650x500, no calibration frames): sep photometry on the raw
   frames (a stand-in until the pipeline's own calibrate/solve/photometry steps are wired), source
   tables in the docs/formats.md layout, then our cross-match, automatic comparison choice,
   differential photometry, aperture choice and fit. The frames have no WCS; the benchmark gives
   them sky coordinates from a tangent plane at 5.21"/px anchored on EXOTIC's target pixel and
   the frame-to-frame offsets (a stand-in for plate solving), so targets are still found by
   coordinates. With ``--sources DIR`` the pipeline's own source tables of the night (from
   ``nightpipe -c examples/hatp32.toml run ../shared/data/hatp32-microobservatory``) are used instead.

Run: .venv/bin/python benchmarks/bench_transit.py [--quick] [--sources OUT/sources/2017-12-19]
Writes bench-results/transit.json.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hatp32-microobservatory"
sys.path.insert(0, str(ROOT / "src"))

from nightpipe.config import ObservatoryConfig  # noqa: E402
from nightpipe.timeseries.csvmode import (  # noqa: E402
    airmass_series,
    bjd_tdb_from_jd_utc,
    lightcurve_from_table,
    read_table,
)
from nightpipe.timeseries.transit import FitOptions, TransitPriors, fit_transit  # noqa: E402

HATP32 = {"ra": 31.04167, "dec": 46.68972}
EXOTIC_SITE = ObservatoryConfig(latitude=32.41638889, longitude=-110.73444444, elevation=2616)
WHIPPLE = ObservatoryConfig(latitude=31.6811, longitude=-110.8783, elevation=2345)
PRIORS = TransitPriors(
    period=2.1500082,
    period_err=1.3e-7,
    t0=2455867.402743,
    t0_err=4.9e-5,
    rp_rs=0.1489,
    a_rs=5.344,
    a_rs_err=0.0395,
    inc=88.98,
    inc_err=0.76,
    ecc=0.159,
    omega=50.0,
    u=(0.40, 0.26),
    u_err=0.1,
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peer_emcee(lc, fit, walkers: int, steps: int, seed: int) -> float:
    """The same posterior sampled the plain way: batman.TransitModel per walker, not vectorised."""
    import batman
    import emcee

    from nightpipe.timeseries.detrend import design_matrix, detrend_vectors
    from nightpipe.timeseries.transit import solve_systematics

    used = fit.used
    t = fit.lc.time[used]
    f = fit.lc.flux[used]
    w = 1.0 / fit.lc.flux_err[used]
    A = design_matrix(detrend_vectors(fit.lc, fit.detrend_vectors), fit.detrend_vectors, len(fit.lc))[used]
    params = batman.TransitParams()
    params.t0, params.per, params.rp, params.a, params.inc = 0.0, PRIORS.period, 0.15, 5.3, 88.9
    params.ecc, params.w, params.limb_dark, params.u = PRIORS.ecc, PRIORS.omega, "quadratic", [0.4, 0.26]
    model = batman.TransitModel(params, t, supersample_factor=3, exp_time=60 / 86400)

    def log_prob(theta: np.ndarray) -> float:
        tc, rp, a, inc, u1, u2 = theta
        if not (0 < rp < 0.5 and 1 < a < 200 and 0 < inc <= 90 and u1 > 0 and u1 + u2 < 1):
            return -math.inf
        params.t0, params.rp, params.a, params.inc, params.u = tc, rp, a, inc, [u1, u2]
        transit = model.light_curve(params)
        _, total = solve_systematics(transit, f, w, A)
        lp = -0.5 * ((a - 5.344) / 0.0395) ** 2 - 0.5 * ((inc - 88.98) / 0.76) ** 2
        lp -= 0.5 * (((u1 - 0.4) / 0.1) ** 2 + ((u2 - 0.26) / 0.1) ** 2)
        return float(lp - 0.5 * np.sum(((f - total) * w) ** 2))

    rng = np.random.default_rng(seed)
    best = np.array([fit.params[n].median for n in fit.sample_names])
    start = best + 1e-4 * rng.standard_normal((walkers, best.size)) * np.abs(best)
    sampler = emcee.EnsembleSampler(walkers, best.size, log_prob)
    t0 = time.perf_counter()
    sampler.run_mcmc(start, steps, progress=False)
    return time.perf_counter() - t0


def bench_exotic(walkers: int, steps: int) -> dict:
    path = DATA / "exotic-reference" / "sampledata.json"
    lc = lightcurve_from_table(read_table(path), **HATP32, site=EXOTIC_SITE, path=path)
    opts = FitOptions(walkers=walkers, steps=steps, seed=1, exptime_s=60.0)
    t0, c0 = time.perf_counter(), time.process_time()
    fit = fit_transit(lc, PRIORS, opts)
    ours, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    t1, c1 = time.perf_counter(), time.process_time()
    fit_transit(lc, PRIORS, FitOptions(sampler="none", exptime_s=60.0))
    lsq, lsq_cpu = time.perf_counter() - t1, time.process_time() - c1
    sampling, sampling_cpu = ours - lsq, ours_cpu - lsq_cpu
    c2 = time.process_time()
    peer = peer_emcee(lc, fit, walkers, steps, 1)
    peer_cpu = time.process_time() - c2
    oc = fit.o_minus_c_min
    assert oc is not None
    return {
        "rp_rs": fit.params["rp_rs"].median,
        "rp_rs_err": fit.params["rp_rs"].err,
        "tc": fit.params["tc"].median,
        "tc_err_min": fit.params["tc"].err * 1440,
        "o_minus_c_min": oc[0],
        "o_minus_c_err_min": oc[1],
        "rms_pct": 100 * fit.rms,
        "binned10_pct": 100 * fit.binned_rms,
        "binned10_white_pct": 100 * fit.binned_expected,
        "detrend": list(fit.detrend_vectors),
        "fit_total_s": ours,
        "fit_total_cpu_s": ours_cpu,
        "sampling_cpu_s": sampling_cpu,
        "peer_sampling_cpu_s": peer_cpu,
        "least_squares_and_bic_s": lsq,
        "sampling_s": sampling,
        "peer_sampling_s": peer,
        "walkers": walkers,
        "steps": steps,
        "sampler": fit.extra["sampler"],
    }


def raw_frame_tables(radii: tuple[float, ...]) -> list:
    """sep photometry of the raw frames into source tables (formats.md columns and meta)."""
    import sep
    from astropy.io import fits
    from astropy.table import Table
    from astropy.time import Time

    from nightpipe.frames.flags import PixelFlag

    tables = []
    for path in sorted(DATA.glob("*.FITS")):
        with fits.open(path) as hdul:
            data = np.asarray(hdul[0].data, dtype=np.float64)
            header = hdul[0].header
        bkg = sep.Background(data, bw=64, bh=64)
        sub = data - bkg.back()
        objs = sep.extract(sub, 5.0, err=bkg.globalrms, minarea=5)
        objs = objs[(objs["flag"] & 1) == 0] if len(objs) else objs
        x, y = objs["x"], objs["y"]
        fwhm = 2.0 * np.sqrt(np.log(2) * (objs["a"] ** 2 + objs["b"] ** 2))
        fwhm_frame = float(np.median(fwhm[(objs["peak"] > 200) & (objs["peak"] < 3500)]))
        flux = np.zeros((len(objs), len(radii)))
        ferr = np.zeros_like(flux)
        for k, r in enumerate(radii):
            f, e, _ = sep.sum_circle(
                data, x, y, r, bkgann=(max(r + 4, 10.0), max(r + 10, 16.0)), err=bkg.globalrms, gain=1.0
            )
            flux[:, k], ferr[:, k] = f, e
        bkgpix = bkg.back()[np.clip(y.astype(int), 0, 499), np.clip(x.astype(int), 0, 649)]
        flags = np.where(objs["peak"] + bkgpix > 3900, int(PixelFlag.SATURATED), 0).astype(np.uint16)
        start = Time(header["UT-OBS"].replace("-0000", ""), scale="utc")
        jd = float(start.jd + header["EXPTIME"] / 2 / 86400)
        table = Table(
            {
                "x": x,
                "y": y,
                "ra": np.full(len(objs), np.nan),
                "dec": np.full(len(objs), np.nan),
                "fwhm": fwhm,
                "peak": objs["peak"],
                "bkg": bkgpix,
                "aper_flux": flux,
                "aper_flux_err": ferr,
                "flags": flags,
            }
        )
        table.meta.update(
            frame=path.name,
            jd_utc=jd,
            exptime=float(header["EXPTIME"]),
            fwhm_px=fwhm_frame,
            sky=float(bkg.globalback),
            aper_radii_px=list(radii),
            naxis1=650,
            naxis2=500,
        )
        tables.append(table)
    jd = np.array([t.meta["jd_utc"] for t in tables])
    bjd = bjd_tdb_from_jd_utc(jd, site=WHIPPLE, **HATP32)
    am = airmass_series(jd, site=WHIPPLE, **HATP32)
    for t, b, a in zip(tables, bjd, am, strict=True):
        t.meta["bjd_tdb"] = float(b)
        t.meta["airmass"] = float(a)
        t.meta["time_source"] = "UT-OBS + EXPTIME/2 (benchmark), BJD_TDB by astropy"
    return tables


def give_sky_coordinates(tables: list) -> None:
    """Stand-in for plate solving: a north-up tangent plane at 5.21"/px through the frame offsets,
    anchored so that EXOTIC's target pixel (424, 286) in the first frame is HAT-P-32."""
    from nightpipe.timeseries.star_identity import crossmatch

    matrix = crossmatch(tables)
    off = matrix.offsets - matrix.offsets[0]
    scale = 5.21 / 3600.0
    cosd = math.cos(math.radians(HATP32["dec"]))
    for table, (dx, dy) in zip(tables, off, strict=True):
        x0 = np.asarray(table["x"]) - dx - 424.0
        y0 = np.asarray(table["y"]) - dy - 286.0
        table["ra"] = HATP32["ra"] - x0 * scale / cosd
        table["dec"] = HATP32["dec"] + y0 * scale


def bench_raw_night(walkers: int, steps: int, sources: Path | None = None) -> dict:
    from astropy.table import Table

    from nightpipe.timeseries.assemble import TargetSpec, build_lightcurve

    t0 = time.perf_counter()
    if sources is not None:  # the pipeline's own source tables (nightpipe run ...)
        tables = [Table.read(p, format="ascii.ecsv") for p in sorted(sources.glob("*.ecsv"))]
    else:
        tables = raw_frame_tables((3.0, 4.0, 5.0, 6.0, 7.0))
        give_sky_coordinates(tables)
    t_phot = time.perf_counter() - t0
    t1 = time.perf_counter()
    built = build_lightcurve(tables, TargetSpec("HAT-P-32", **HATP32), priors=PRIORS)
    t_build = time.perf_counter() - t1
    t2, c2 = time.perf_counter(), time.process_time()
    fit = fit_transit(built.lc, PRIORS, FitOptions(walkers=walkers, steps=steps, seed=1, exptime_s=60.0))
    t_fit, c_fit = time.perf_counter() - t2, time.process_time() - c2
    oc = fit.o_minus_c_min
    assert oc is not None
    return {
        "frames": len(tables),
        "points": len(built.lc),
        "comparisons": len(built.comparisons.stars),
        "comparison_report": built.comparisons.report()[:12],
        "aperture_px": built.lc.meta["aperture_px"],
        "aperture_scatter_pct": [100 * s for s in built.aperture.scatter],
        "rp_rs": fit.params["rp_rs"].median,
        "rp_rs_err": fit.params["rp_rs"].err,
        "tc": fit.params["tc"].median,
        "tc_err_min": fit.params["tc"].err * 1440,
        "o_minus_c_min": oc[0],
        "o_minus_c_err_min": oc[1],
        "rms_pct": 100 * fit.rms,
        "binned10_pct": 100 * fit.binned_rms,
        "binned10_white_pct": 100 * fit.binned_expected,
        "detrend": list(fit.detrend_vectors),
        "photometry_s": t_phot,
        "build_s": t_build,
        "fit_s": t_fit,
        "fit_cpu_s": c_fit,
    }


def main() -> int:
    parser = bench_parser(__doc__, "fewer emcee steps")
    parser.add_argument(
        "--sources",
        type=Path,
        help="source tables of the HAT-P-32 night made by `nightpipe run` (sources/2017-12-19); "
        "default: sep photometry of the raw frames as a stand-in",
    )
    args = parser.parse_args()
    walkers, steps = (32, 500) if args.quick else (32, 2000)
    results: dict = {}
    ex = bench_exotic(walkers, steps)
    results["exotic_curve"] = ex
    ratio = ex["sampling_cpu_s"] / ex["peer_sampling_cpu_s"]
    print(
        f"emcee posterior {walkers}x{steps} on 140 pts: ours {ex['sampling_s']:.2f} s wall "
        f"({ex['sampling_cpu_s']:.2f} s CPU), batman+emcee peer {ex['peer_sampling_s']:.2f} s wall "
        f"({ex['peer_sampling_cpu_s']:.2f} s CPU), CPU ratio {ratio:.2f}, peak RSS {peak_rss_mb():.0f} MB"
    )
    smp = ex["sampler"]
    per_eval = ex["sampling_cpu_s"] / smp["model_evaluations"]
    floor = per_eval * smp["walkers"] * 20 * smp["autocorr_steps"]
    print(
        f"  ours ran {smp['steps']} of at most {steps} steps "
        f"({'stopped by' if smp['stopped_on_autocorr'] else 'capped before'} the autocorrelation rule; "
        f"tau {smp['autocorr_steps']:.0f}, {smp['effective_samples']:.0f} independent samples, "
        f"{smp['model_evaluations']} evaluations; peer {walkers * steps}); floor {floor:.2f} s CPU "
        f"({per_eval * 1e6:.0f} us per evaluation x {smp['walkers']} walkers x 20 tau), ours / floor "
        f"{ex['sampling_cpu_s'] / floor:.1f}; load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"whole fit (least squares, BIC selection, posterior): {ex['fit_total_s']:.2f} s wall, "
        f"{ex['fit_total_cpu_s']:.2f} s CPU"
    )
    print(
        f"EXOTIC curve: Rp/Rs {ex['rp_rs']:.4f} +- {ex['rp_rs_err']:.4f}, O-C {ex['o_minus_c_min']:+.2f} +- "
        f"{ex['o_minus_c_err_min']:.2f} min, rms {ex['rms_pct']:.3f} %, "
        f"10-min bins {ex['binned10_pct']:.3f} % (white {ex['binned10_white_pct']:.3f} %), "
        f"detrend {ex['detrend']}"
    )
    raw = bench_raw_night(walkers, steps, args.sources)
    raw["photometry"] = "pipeline source tables" if args.sources else "sep stand-in on raw frames"
    results["raw_night"] = raw
    print(
        f"raw night ({raw['frames']} frames, {raw['photometry']} {raw['photometry_s']:.1f} s): build "
        f"{raw['build_s']:.2f} s, fit {raw['fit_s']:.2f} s ({raw['fit_cpu_s']:.2f} s CPU); "
        f"{raw['comparisons']} comparisons, aperture "
        f"{raw['aperture_px']} px, Rp/Rs {raw['rp_rs']:.4f} +- {raw['rp_rs_err']:.4f}, O-C "
        f"{raw['o_minus_c_min']:+.2f} +- {raw['o_minus_c_err_min']:.2f} min, rms {raw['rms_pct']:.3f} %, "
        f"10-min bins {raw['binned10_pct']:.3f} % (white {raw['binned10_white_pct']:.3f} %), "
        f"detrend {raw['detrend']}"
    )
    for line in raw["comparison_report"][:6]:
        print("   ", line)
    targets = [
        ("posterior sampling faster than the batman+emcee peer", ratio < 1.0),
        ("whole fit (least squares, BIC, posterior) under 10 s of CPU", ex["fit_total_cpu_s"] < 10.0),
        ("raw night: Rp/Rs within 0.010 of 0.1489", abs(raw["rp_rs"] - 0.1489) < 0.010),
        ("raw night: mid-time within 3 min of the ephemeris", abs(raw["o_minus_c_min"]) < 3.0),
        ("raw night: mid-time within 2 sigma", abs(raw["o_minus_c_min"]) < 2 * raw["o_minus_c_err_min"]),
        ("raw night: residual scatter per frame <= 0.50 %", raw["rms_pct"] <= 0.50),
        ("raw night: build + fit under 60 s", raw["build_s"] + raw["fit_s"] < 60.0),
    ]
    for name, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    results["targets"] = {name: ok for name, ok in targets}
    out = ROOT / "bench-results" / "transit.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
