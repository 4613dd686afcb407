"""A simulated night's stars from the real sky: the Tycho-2 stars of the index files at the
pointing, completed by random fainter stars, so that the frames plate-solve offline like real ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nightpipe.simulate.options import SimOptions, StarList

log = logging.getLogger(__name__)

N_FAINT = 400  # random faint stars of a 25.6' field (the demo's), scaled by the field's area
DEMO_SIDE_ARCSEC = 1536.0
MIN_ON_FRAME = 20  # fewer real and faint stars on the frame than this: a random field instead
FAINT_RANGE = (12.0, 17.5)


def real_sky_stars(options: SimOptions, index_dirs: tuple[Path, ...], seed: int) -> StarList | None:
    """The index files' stars around the pointing of ``options`` (1.6 half-fields) plus
    random ones of magnitude 12-17.5 (``N_FAINT`` on the demo's 25.6' field, as many per square
    degree on others), or ``None`` (and a warning) without index files or when fewer than
    ``MIN_ON_FRAME`` stars would fall on the frame.

    The random stars use their own generator seeded with ``seed`` (the demo night's field is
    made this way with the night's seed).
    """
    from nightpipe.astrometry.index_catalog import IndexCatalog, find_index_files

    if not find_index_files(index_dirs):
        log.warning(
            "no astrometry.net index files in %s: the simulated field is random and will not solve",
            ", ".join(map(str, index_dirs)),
        )
        return None
    half_deg = options.camera.size * options.sky.pixel_scale / 3600.0 / 2.0
    radius = half_deg * 1.6
    bright = IndexCatalog.from_dirs(index_dirs, max_files=None).cone(
        options.site.ra, options.site.dec, radius
    )
    rng = np.random.default_rng(seed)
    # dN/dm ~ 10^(0.3 m) between 12 and 17.5: inverse-transform sampling
    lo, hi = FAINT_RANGE
    slope = 0.3 * np.log(10)
    side = options.camera.size * options.sky.pixel_scale
    n_faint = round(N_FAINT * (side / DEMO_SIDE_ARCSEC) ** 2)
    u = rng.uniform(size=n_faint)
    mags = np.log(np.exp(slope * lo) + u * (np.exp(slope * hi) - np.exp(slope * lo))) / slope
    cosd = np.cos(np.radians(options.site.dec))
    ra = options.site.ra + rng.uniform(-radius, radius, n_faint) / cosd
    dec = options.site.dec + rng.uniform(-radius, radius, n_faint)
    keep = np.isfinite(bright.mag)
    all_ra, all_dec = np.concatenate([bright.ra[keep], ra]), np.concatenate([bright.dec[keep], dec])
    dra = (all_ra - options.site.ra + 180.0) % 360.0 - 180.0
    on_frame = int(np.sum((np.abs(dra) * cosd < half_deg) & (np.abs(all_dec - options.site.dec) < half_deg)))
    if on_frame < MIN_ON_FRAME:
        log.info("only %d real and faint stars on a field this small: a random field", on_frame)
        return None
    return StarList(
        ra=np.concatenate([bright.ra[keep], ra]),
        dec=np.concatenate([bright.dec[keep], dec]),
        mag=np.concatenate([bright.mag[keep], mags]),
    )
