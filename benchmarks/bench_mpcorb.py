"""Offline identification by orbit at MPCORB's scale: a generated MPCORB-format file of N orbits
(main-belt elements drawn at random, real layout) is read, every orbit put on the sky at the
night's middle (the coarse pass) and the ones near the field matched to a track.

Prints: ours (s) for the read, the coarse pass and the match; the floor (one numpy pass of
sin+cos over N x 10, about what the Kepler solve must do); their ratio; the load.

    PYTHONPATH=src python benchmarks/bench_mpcorb.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nightpipe.identify.night_input  # noqa: F401  (imported before timing: its first import is slow)
from nightpipe.movers.kepler import Site, astrometric
from nightpipe.movers.mpcorb import read_mpcorb
from nightpipe.movers.orbit_match import identify_with_orbits, near_field


def _write(path: Path, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    a = rng.uniform(2.1, 3.5, n)
    e, inc = rng.uniform(0, 0.3, n), rng.uniform(0, 30, n)
    m, w, node = (rng.uniform(0, 360, n) for _ in range(3))
    mean_motion = np.degrees(0.01720209895 / a**1.5)
    with path.open("w") as out:
        for k in range(n):
            out.write(
                f"{k + 1:05d}"[-5:].ljust(7) + f" {15.0:5.2f} {0.15:5.2f} K25BL {m[k]:9.5f}  {w[k]:9.5f}  "
                f"{node[k]:9.5f}  {inc[k]:9.5f}  {e[k]:9.7f} {mean_motion[k]:11.8f} {a[k]:11.7f}  0 MPO000000"
                f"  {100:4d}  10 2000-2025 0.50 M-v 30k MPCORBFIT  0000      "
                f"({k + 1}) bench{k:<14d}20251214\n"
            )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "MPCORB.DAT"
        _write(path, n)
        t0 = time.perf_counter()
        orbits = read_mpcorb(path, Path(tmp) / "cache")
        t1 = time.perf_counter()
        read_mpcorb(path, Path(tmp) / "cache")
        cached = time.perf_counter() - t1
        t1 = time.perf_counter()
        jd = 2461041.5 + np.arange(20) * 3 / 1440
        target = orbits.take(np.array([n // 2]))
        ra, dec, _ = astrometric(target, jd, None)
        near = near_field(orbits, float(jd[10]), (float(ra[0, 10]), float(dec[0, 10])), 1.5)
        t2 = time.perf_counter()
        site = Site(31.68, -110.88, 2345.0)
        ra, dec, _ = astrometric(target, jd, site)
        found = identify_with_orbits(orbits, [(jd, ra[0], dec[0])], site, radius_arcsec=10.0)
        t3 = time.perf_counter()
        x = np.random.default_rng(0).uniform(0, 6, (n, 10))
        t4 = time.perf_counter()
        np.sin(x) + np.cos(x)
        floor = time.perf_counter() - t4
    assert found[0] is not None and found[0].packed == str(orbits.packed[n // 2])
    print(f"orbits {n}, load {os.getloadavg()[0]:.2f}")
    print(
        f"read {t1 - t0 - cached:.2f} s ({(t1 - t0 - cached) / n * 1e6:.1f} us/orbit), "
        f"from the cache {cached:.2f} s"
    )
    print(
        f"coarse pass {t2 - t1:.2f} s, {near.size} near the field; "
        f"floor {floor:.2f} s; ratio {(t2 - t1) / floor:.1f}"
    )
    print(f"identify one track (coarse + exact) {t3 - t2:.2f} s")
    print(
        f"extrapolated to 1.4 M orbits: read {(t1 - t0 - cached) * 1.4e6 / n:.0f} s "
        f"(cached {cached * 1.4e6 / n:.1f} s), "
        f"identify {(t3 - t2) * 1.4e6 / n:.0f} s"
    )


if __name__ == "__main__":
    main()
