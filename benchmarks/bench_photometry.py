"""Benchmark: detection + multi-aperture photometry and PSF photometry against sep and photutils.

Run: ``.venv/bin/python benchmarks/bench_photometry.py [--quick]``.

1. Background + detection + photometry in 5 apertures with a sigma-clipped annulus median, on a
   4096x4096 synthetic frame with 5,000 Moffat stars: nightpipe against sep (Background +
   extract + sum_circle) and photutils (Background2D + DAOStarFinder + aperture_photometry +
   ApertureStats). Each side runs in its own subprocess (peak RSS is that process's maximum);
   times are medians of the repeats after a warm-up (numba compilation excluded). Fluxes are
   compared with photutils' at the same positions with the same annulus estimator.
2. PSF photometry of 2,000 stars on 2048x2048: nightpipe (ePSF build + grouped fit) against
   photutils PSFPhotometry with an ImagePSF of the same ePSF grid, same initial positions and
   fit box; fluxes compared.

Prints one line per measurement and PASS/FAIL for the issue's targets; writes
bench-results/photometry.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
RADII = (3.0, 4.5, 6.0, 7.5, 9.0)
ANNULUS = (12.0, 18.0)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


# ----------------------------------------------------------------------------- children


def child_detect(side: str, frame: Path, repeats: int, positions_out: Path | None) -> dict:
    data = np.load(frame)
    base_rss = _rss_mb()
    if side == "nightpipe":
        from nightpipe.photometry.aperture import aperture_photometry
        from nightpipe.photometry.background import mesh_background
        from nightpipe.photometry.detect import detect_sources

        def run():
            bkg = mesh_background(data, box=64, filter_size=3)
            det = detect_sources(data, bkg.level, bkg.rms, detect_sigma=5.0, min_area=5)
            phot = aperture_photometry(data, det.x, det.y, RADII, annulus=ANNULUS, statistic="median")
            return det.x, det.y, phot.flux

        cut = data[:512, :512].copy()
        bkg = mesh_background(cut)
        det = detect_sources(cut, bkg.level, bkg.rms)
        aperture_photometry(cut, det.x, det.y, RADII, annulus=ANNULUS)
    elif side == "sep":
        import sep

        def run():
            bkg = sep.Background(data, bw=64, bh=64, fw=3, fh=3)
            sub = data - bkg.back()
            obj = sep.extract(sub, 5.0, err=bkg.globalrms, minarea=5)
            flux = np.column_stack(
                [sep.sum_circle(data, obj["x"], obj["y"], r, bkgann=ANNULUS, subpix=0)[0] for r in RADII]
            )
            return obj["x"], obj["y"], flux

        run()
    else:
        from astropy.stats import SigmaClip
        from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry
        from photutils.background import Background2D, MedianBackground
        from photutils.detection import DAOStarFinder

        def run():
            bkg = Background2D(data, (64, 64), filter_size=(3, 3), bkg_estimator=MedianBackground())
            sub = data - bkg.background
            finder = DAOStarFinder(threshold=5.0 * bkg.background_rms_median, fwhm=3.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = finder(sub)
            xy = np.column_stack([found["x_centroid"], found["y_centroid"]])
            stats = ApertureStats(data, CircularAnnulus(xy, *ANNULUS), sigma_clip=SigmaClip(3.0, maxiters=5))
            table = aperture_photometry(data, [CircularAperture(xy, r) for r in RADII], method="exact")
            flux = np.column_stack(
                [
                    np.asarray(table[f"aperture_sum_{k}"]) - stats.median * np.pi * r * r
                    for k, r in enumerate(RADII)
                ]
            )
            return xy[:, 0], xy[:, 1], flux

    seconds, out = _median_time(run, repeats)
    x, y, flux = out  # type: ignore[misc]
    if positions_out is not None:
        np.save(positions_out, np.column_stack([x, y, np.asarray(flux)]))
    return {"side": side, "seconds": seconds, "n": len(x), "rss_mb": _rss_mb(), "base_rss_mb": base_rss}


def child_psf(side: str, frame: Path, repeats: int, positions: Path, epsf_file: Path, out: Path) -> dict:
    data = np.load(frame)
    xy = np.load(positions)
    base_rss = _rss_mb()
    if side == "nightpipe":
        from nightpipe.photometry.psf import EPSF, build_epsf, fit_psf

        truth = np.load(str(frame).replace(".npy", "_truth.npy"))
        bright = _bright_isolated(truth, 100)

        def run():
            epsf = build_epsf(data, xy[bright, 0], xy[bright, 1], fwhm=3.0, others=(xy[:, 0], xy[:, 1]))
            res = fit_psf(data, xy[:, 0], xy[:, 1], epsf, fit_half=3)
            return epsf, res

        # warm-up (compilation)
        build_epsf(data, xy[bright, 0], xy[bright, 1], fwhm=3.0, iters=1)
        seconds_total, (epsf, res) = _median_time(run, repeats)
        np.save(epsf_file, epsf.data)

        def fit_only():
            return fit_psf(
                data, xy[:, 0], xy[:, 1], EPSF(epsf.data, epsf.oversampling, epsf.n_stars), fit_half=3
            )

        seconds_fit, res = _median_time(fit_only, repeats)
        np.save(out, np.column_stack([res.flux, res.x, res.y]))
        return {
            "side": side,
            "seconds": seconds_fit,
            "seconds_with_build": seconds_total,
            "rss_mb": _rss_mb(),
            "base_rss_mb": base_rss,
        }
    from astropy.table import Table
    from photutils.psf import ImagePSF, PSFPhotometry, SourceGrouper

    grid = np.load(epsf_file)
    model = ImagePSF(grid, oversampling=2)
    phot = PSFPhotometry(model, (7, 7), aperture_radius=4, grouper=SourceGrouper(min_separation=8))
    init = Table({"x": xy[:, 0], "y": xy[:, 1]})

    def run_pu():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return phot(data, init_params=init)

    seconds, table = _median_time(run_pu, repeats)
    np.save(out, np.column_stack([table["flux_fit"], table["x_fit"], table["y_fit"]]))
    return {"side": side, "seconds": seconds, "rss_mb": _rss_mb(), "base_rss_mb": base_rss}


def child_make(tmp: Path, quick: bool) -> dict:
    """Write the frames (and truth) to ``tmp``; run in a child so the parent stays small."""
    from nightpipe.photometry.synthetic import make_star_field

    size, n_stars, psf_size, n_psf = (2048, 1250, 1024, 500) if quick else (4096, 5000, 2048, 2000)
    field = make_star_field((size, size), n_stars, fwhm=3.0, flux_range=(2e3, 2e5), seed=1)
    np.save(tmp / "frame.npy", field.data)
    pfield = make_star_field((psf_size, psf_size), n_psf, fwhm=3.0, flux_range=(5e3, 2e5), sky=0.0, seed=5)
    np.save(tmp / "psf.npy", pfield.data)
    np.save(tmp / "psf_truth.npy", np.column_stack([pfield.x, pfield.y, pfield.flux]))
    rng = np.random.default_rng(3)
    start = np.column_stack(
        [pfield.x + rng.normal(0, 0.1, pfield.x.size), pfield.y + rng.normal(0, 0.1, pfield.x.size)]
    )
    np.save(tmp / "psf_start.npy", start)
    return {"size": size, "n_stars": n_stars, "psf_size": psf_size, "n_psf": n_psf}


def _bright_isolated(truth: np.ndarray, n: int) -> np.ndarray:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(truth[:, :2]).query(truth[:, :2], k=2)
    iso = d[:, 1] > 20
    order = np.argsort(-truth[:, 2] * iso)
    return order[:n]


# ----------------------------------------------------------------------------- parent


def _spawn(args: list[str]) -> dict:
    return run_json_child(__file__, *args, cwd=ROOT)


def main() -> int:
    parser = bench_parser(__doc__, "2048x2048 and 1024x1024 frames")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, side, *rest = args.child
        if kind == "make":
            result = child_make(Path(side), rest[0] == "quick")
        elif kind == "detect":
            result = child_detect(side, Path(rest[0]), int(rest[1]), Path(rest[2]) if len(rest) > 2 else None)
        else:
            result = child_psf(side, Path(rest[0]), int(rest[1]), Path(rest[2]), Path(rest[3]), Path(rest[4]))
        print(json.dumps(result))
        return 0

    repeats = 3
    results: dict = {"quick": bool(args.quick), "measurements": [], "targets": []}
    with tempfile.TemporaryDirectory(prefix="bench_phot_") as tmp_name:
        tmp = Path(tmp_name)
        sizes = _spawn(["--child", "make", str(tmp), "quick" if args.quick else "full"])
        size, n_stars, psf_size, n_psf = sizes["size"], sizes["n_stars"], sizes["psf_size"], sizes["n_psf"]
        frame = tmp / "frame.npy"
        rows = {}
        for side in ("nightpipe", "sep", "photutils"):
            pos = tmp / f"{side}_phot.npy"
            rows[side] = _spawn(["--child", "detect", side, str(frame), str(repeats), str(pos)])
        ours = rows["nightpipe"]
        for side in ("sep", "photutils"):
            peer = rows[side]
            ratio = peer["seconds"] / ours["seconds"]
            line = {
                "name": f"detect+aperture vs {side}",
                "size": f"{size}x{size}, {n_stars} stars, {len(RADII)} radii",
                "ours_s": ours["seconds"],
                "peer_s": peer["seconds"],
                "peer_over_ours": ratio,
                "ours_rss_mb": ours["rss_mb"],
                "peer_rss_mb": peer["rss_mb"],
                "ours_n": ours["n"],
                "peer_n": peer["n"],
            }
            results["measurements"].append(line)
            print(
                f"{line['name']:<28} {line['size']:<32} ours {ours['seconds']:.3f} s ({ours['n']} src, "
                f"{ours['rss_mb']:.0f} MB)  {side} {peer['seconds']:.3f} s ({peer['n']} src, "
                f"{peer['rss_mb']:.0f} MB)  speed-up x{ratio:.2f}"
            )
        # PSF photometry: children are spawned while the parent is still small (a child's peak
        # RSS starts at its parent's, as Linux keeps the high-water mark across exec)
        pframe = tmp / "psf.npy"
        epsf_file = tmp / "epsf.npy"
        ours_psf = _spawn(
            [
                "--child",
                "psf",
                "nightpipe",
                str(pframe),
                str(repeats),
                str(tmp / "psf_start.npy"),
                str(epsf_file),
                str(tmp / "psf_ours.npy"),
            ]
        )
        peer_psf = _spawn(
            [
                "--child",
                "psf",
                "photutils",
                str(pframe),
                "1",
                str(tmp / "psf_start.npy"),
                str(epsf_file),
                str(tmp / "psf_pu.npy"),
            ]
        )
        # flux agreement with photutils at our positions, same annulus estimator
        from astropy.stats import SigmaClip
        from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture, aperture_photometry

        mine = np.load(tmp / "nightpipe_phot.npy")
        xy = mine[:, :2]
        image = np.load(frame)
        stats = ApertureStats(image, CircularAnnulus(xy, *ANNULUS), sigma_clip=SigmaClip(3.0, maxiters=5))
        table = aperture_photometry(image, [CircularAperture(xy, r) for r in RADII], method="exact")
        ref = np.column_stack(
            [
                np.asarray(table[f"aperture_sum_{k}"]) - stats.median * np.pi * r * r
                for k, r in enumerate(RADII)
            ]
        )
        bright = ref[:, -1] > 1e4
        rel = np.abs(mine[:, 2:] - ref) / np.abs(ref)
        agree_med = float(np.median(rel[bright]))
        agree_max = float(np.max(rel[bright]))
        print(
            f"{'aperture flux vs photutils':<28} {int(bright.sum())} stars > 1e4 ADU        "
            f"median |rel diff| {agree_med:.2e}, max {agree_max:.2e}"
        )
        results["measurements"].append(
            {"name": "aperture flux agreement", "median_rel": agree_med, "max_rel": agree_max}
        )
        a = np.load(tmp / "psf_ours.npy")
        b = np.load(tmp / "psf_pu.npy")
        prel = np.abs(a[:, 0] / b[:, 0] - 1)
        psf_ratio = peer_psf["seconds"] / ours_psf["seconds"]
        psf_ratio_build = peer_psf["seconds"] / ours_psf["seconds_with_build"]
        truth_scale = float(np.median(a[:, 0] / np.load(tmp / "psf_truth.npy")[:, 2]))
        print(
            f"{'PSF fit vs photutils':<28} {psf_size}x{psf_size}, {n_psf} stars             "
            f"ours {ours_psf['seconds']:.3f} s (with ePSF build {ours_psf['seconds_with_build']:.3f} s, "
            f"{ours_psf['rss_mb']:.0f} MB)  photutils {peer_psf['seconds']:.3f} s "
            f"({peer_psf['rss_mb']:.0f} MB)  "
            f"speed-up x{psf_ratio:.1f} (x{psf_ratio_build:.1f} incl. build)"
        )
        print(
            f"{'PSF flux vs photutils':<28} same ImagePSF grid, 7x7 box      median |rel diff| "
            f"{np.median(prel):.2e}, 99th pct {np.percentile(prel, 99):.2e}; "
            f"ours/truth median {truth_scale:.4f}"
        )
        results["measurements"].append(
            {
                "name": "psf",
                "ours_fit_s": ours_psf["seconds"],
                "ours_with_build_s": ours_psf["seconds_with_build"],
                "photutils_s": peer_psf["seconds"],
                "speedup_fit": psf_ratio,
                "speedup_with_build": psf_ratio_build,
                "flux_median_rel": float(np.median(prel)),
                "flux_p99_rel": float(np.percentile(prel, 99)),
                "ours_rss_mb": ours_psf["rss_mb"],
                "photutils_rss_mb": peer_psf["rss_mb"],
                "ours_over_truth": truth_scale,
            }
        )
    sep_ratio = results["measurements"][0]["peer_over_ours"]
    pu_ratio = results["measurements"][1]["peer_over_ours"]
    targets = [
        ("detect+aperture at least as fast as sep", sep_ratio >= 1.0, f"x{sep_ratio:.2f}"),
        ("detect+aperture much faster than photutils (>= 5x)", pu_ratio >= 5.0, f"x{pu_ratio:.1f}"),
        ("aperture fluxes agree with photutils to 0.1 %", agree_max < 1e-3, f"max {agree_max:.1e}"),
        ("PSF photometry >= 10x faster than photutils (fit)", psf_ratio >= 10, f"x{psf_ratio:.1f}"),
        ("PSF photometry >= 10x faster incl. ePSF build", psf_ratio_build >= 10, f"x{psf_ratio_build:.1f}"),
        (
            "PSF fluxes agree with photutils (median < 1e-3)",
            float(np.median(prel)) < 1e-3,
            f"{np.median(prel):.1e}",
        ),
    ]
    for name, ok, value in targets:
        print(f"{'PASS' if ok else 'FAIL'}: {name} ({value})")
        results["targets"].append({"name": name, "pass": bool(ok), "value": value})
    out = ROOT / "bench-results" / "photometry.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
