"""Benchmark of the frame inventory: nightpipe scan vs ccdproc.ImageFileCollection.

Usage::

    .venv/bin/python benchmarks/bench_scan.py [--quick] [--frames 1000] [--repeats 3] [--data ../shared/data]

A temporary flat folder of ``--frames`` files is built: half symbolic links to the real
image files of ../shared/data (every dialect: MaxIm, SBIG, MicroObservatory, ESO MEF,
GMOS MEF, gzip...), half small generated frames (64 x 64, int16) with MaxIm/SBIG-style
headers. Measured, each side in its own process (so peak RSS is its own):

* ours, first scan: ``nightpipe.inventory.scan_paths`` into a fresh SQLite database
  (headers of every HDU, content hash of every file, normalisation, UTC/JD/BJD_TDB,
  database rows);
* ours, rescan of the unchanged folder (must read no file);
* ours, headers only: ``read_file_frames`` on every file (no hash, no timing, no database);
* peer: ``ccdproc.ImageFileCollection(folder, keywords="*")`` (headers of HDU 0 into a
  table); its rescan is ``refresh()`` (it has no incremental mode).

Speeds are files/s (the peer reads one HDU per file; ours reads all, frames/s is given
too). Medians of ``--repeats`` runs. Results go to ``bench-results/scan.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import bench_parser, run_json_child

ROOT = Path(__file__).resolve().parents[1]
SKIP_NAMES = (
    "2014-12-29-ey-uma-9.fits",  # FITS tables, not frames
    "unclipped_ey_uma_vsx.fits",
    "dss_test1.fits",  # ccdproc stops with VerifyError "Unparsable card (SKEW)" on these two; ours reads them
    "dss_test2.fits",
)


def build_folder(folder: Path, data: Path, n_files: int) -> int:
    """Fill ``folder`` with ``n_files`` files (half links to real frames, half generated)."""
    import numpy as np
    from astropy.io import fits

    real = sorted(
        p
        for p in data.rglob("*")
        if p.is_file()
        and p.name not in SKIP_NAMES
        and p.name.lower().endswith((".fits", ".fit", ".fts", ".mt", ".fits.gz"))
    )
    n_real = n_files // 2
    for i in range(n_real):
        src = real[i % len(real)]
        suffix = ".fits.gz" if src.name.lower().endswith(".gz") else ".fits"
        os.symlink(src, folder / f"real_{i:05d}{suffix}")
    rng = np.random.default_rng(1)
    kinds = ["Bias Frame", "Dark Frame", "Flat Field", "Light Frame", "ZERO", "OBJECT"]
    for i in range(n_files - n_real):
        hdu = fits.PrimaryHDU(rng.integers(900, 1100, (64, 64)).astype(np.int16))
        h = hdu.header
        h["IMAGETYP"] = kinds[i % len(kinds)]
        h["EXPTIME"] = float(i % 7) * 10.0
        h["FILTER"] = "BVRI"[i % 4]
        h["XBINNING"] = h["YBINNING"] = 1 + i % 2
        h["CCD-TEMP"] = -20.0 + rng.normal(0, 0.3)
        h["SET-TEMP"] = -20.0
        h["DATE-OBS"] = f"2024-03-01T{3 + i % 6:02d}:{i % 60:02d}:{(7 * i) % 60:02d}.123"
        h["OBJCTRA"] = "02 04 10"
        h["OBJCTDEC"] = "+46 41 23"
        h["SITELAT"] = "31 40 52"
        h["SITELONG"] = "-110 52 42"
        h["INSTRUME"] = "SBIG STF-8300 CCD Camera"
        for k in range(60):  # a header of realistic length (MaxIm writes 60-120 cards)
            h[f"EXTRA{k:03d}"] = (k * 1.5, "filler keyword")
        hdu.writeto(folder / f"gen_{i:05d}.fits")
    return n_files


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ours(folder: Path, repeats: int) -> dict[str, object]:
    from nightpipe.config import Settings
    from nightpipe.inventory import scan_paths
    from nightpipe.store import open_database

    settings = Settings()
    first, rescan, frames, files, unchanged = [], [], 0, 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            db = open_database(f"sqlite:///{tmp}/scan{r}.sqlite")
            start = time.perf_counter()
            summary = scan_paths([folder], settings, db)
            first.append(time.perf_counter() - start)
            frames, files = summary.frames, summary.files
            start = time.perf_counter()
            again = scan_paths([folder], settings, db)
            rescan.append(time.perf_counter() - start)
            unchanged.append(again.unchanged == again.files == files and again.frames == 0)
            db.dispose()
    return {"first_s": first, "rescan_s": rescan, "files": files, "frames": frames,
            "rescan_read_nothing": all(unchanged), "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def worker_headers(folder: Path, repeats: int) -> dict[str, object]:
    from nightpipe.config import Settings
    from nightpipe.errors import FitsReadError
    from nightpipe.inventory import iter_fits_files, read_file_frames

    settings = Settings()
    files = list(iter_fits_files([folder]))
    times, frames = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        frames = 0
        for path in files:
            with contextlib.suppress(FitsReadError):
                frames += len(read_file_frames(path, settings))
        times.append(time.perf_counter() - start)
    return {"first_s": times, "files": len(files), "frames": frames, "peak_rss_mb": _peak_rss_mb()}


def worker_peer(folder: Path, repeats: int) -> dict[str, object]:
    import warnings

    from ccdproc import ImageFileCollection

    warnings.simplefilter("ignore")
    first, rescan, files = [], [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        collection = ImageFileCollection(str(folder), keywords="*")
        first.append(time.perf_counter() - start)
        files = len(collection.summary) if collection.summary is not None else 0
        start = time.perf_counter()
        collection.refresh()
        rescan.append(time.perf_counter() - start)
    return {
        "first_s": first,
        "rescan_s": rescan,
        "files": files,
        "frames": files,
        "peak_rss_mb": _peak_rss_mb(),
    }


WORKERS = {"ours": worker_ours, "headers": worker_headers, "peer": worker_peer}


def run_worker(name: str, folder: Path, repeats: int) -> dict[str, object]:
    return run_json_child(__file__, "--worker", name, "--folder", str(folder), "--repeats", str(repeats))


def main() -> int:
    parser = bench_parser(__doc__, "300 files, 1 repeat")
    parser.add_argument("--frames", type=int, default=1000, help="files in the folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.folder, args.repeats)))
        return 0
    n_files, repeats = (300, 1) if args.quick else (args.frames, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        folder = Path(tmp) / "night folder"
        folder.mkdir()
        build_folder(folder, args.data, n_files)
        # warm the page cache so that both sides read from memory
        for path in folder.iterdir():
            path.read_bytes()
        results = {name: run_worker(name, folder, repeats) for name in ("ours", "headers", "peer")}
    ours, headers, peer = results["ours"], results["headers"], results["peer"]

    def med(values: object) -> float:
        assert isinstance(values, list)
        return float(statistics.median(values))

    rows = [
        ("first scan", med(ours["first_s"]), med(peer["first_s"])),
        ("rescan (unchanged)", med(ours["rescan_s"]), med(peer["rescan_s"])),
        ("headers only (no hash/db)", med(headers["first_s"]), med(peer["first_s"])),
    ]
    files = int(ours["files"])  # type: ignore[call-overload]
    print(f"folder: {files} files ({ours['frames']} image HDUs; peer tabulated {peer['files']} files)")
    print(f"{'measurement':28s} {'files':>6s} {'ours s':>8s} {'peer s':>8s} {'ratio':>6s} "
          f"{'ours files/s':>12s} {'peer files/s':>12s}")  # fmt: skip
    lines = []
    for name, t_ours, t_peer in rows:
        ratio = t_ours / t_peer
        line = {"name": name, "files": files, "ours_s": t_ours, "peer_s": t_peer, "ratio": ratio,
                "ours_files_per_s": files / t_ours, "peer_files_per_s": files / t_peer}  # fmt: skip
        lines.append(line)
        print(f"{name:28s} {files:6d} {t_ours:8.3f} {t_peer:8.3f} {ratio:6.3f} "
              f"{files / t_ours:12.0f} {files / t_peer:12.0f}")  # fmt: skip
    print(f"ours first scan: {int(ours['frames']) / med(ours['first_s']):.0f} frames/s "  # type: ignore[call-overload]
          f"(hash + headers + times + database)")  # fmt: skip
    print(f"peak RSS MB: ours {ours['peak_rss_mb']:.0f}, ours headers-only {headers['peak_rss_mb']:.0f}, "
          f"peer {peer['peak_rss_mb']:.0f}")  # fmt: skip
    targets = [
        ("first scan faster than ccdproc.ImageFileCollection", rows[0][1] < rows[0][2]),
        ("rescan of an unchanged folder reads no file", bool(ours["rescan_read_nothing"])),
        ("rescan at least 10x faster than the first scan", rows[1][1] * 10 <= rows[0][1]),
        ("header reading at least 3x faster than ccdproc.ImageFileCollection", rows[2][1] * 3 <= rows[2][2]),
    ]
    for text, ok in targets:
        print(f"{text}: {'PASS' if ok else 'FAIL'}")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    payload = {"files": files, "repeats": repeats, "measurements": lines, "raw": results,
               "targets": {t: ok for t, ok in targets}}  # fmt: skip
    (out / "scan.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
