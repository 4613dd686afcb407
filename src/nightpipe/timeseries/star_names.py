"""Names for the stars of a light curve: a catalogue identifier when the identify step found one,
else an IAU-style name from the coordinates (``J020410.32+464116.0``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table

# catalogue columns of the identify step's night catalogue, in order of preference
NAME_COLUMNS = ("simbad_id", "vsx_name", "gaia_source_id")


def coordinate_name(ra: float, dec: float) -> str:
    """``Jhhmmss.ss+ddmmss.s`` (truncated, as the IAU recommends), or ``unknown`` without a position.

    >>> coordinate_name(31.042917, 46.687778)
    'J020410.30+464116.0'
    """
    if not (np.isfinite(ra) and np.isfinite(dec)):
        return "unknown"
    hours = (ra % 360.0) / 15.0
    h, rem = divmod(hours * 3600.0, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "+" if dec >= 0 else "-"
    d, drem = divmod(abs(dec) * 3600.0, 3600.0)
    dm, ds = divmod(drem, 60.0)
    ra_text = f"{int(h):02d}{int(m):02d}{np.floor(s * 100) / 100:05.2f}"
    dec_text = f"{int(d):02d}{int(dm):02d}{np.floor(ds * 10) / 10:04.1f}"
    return f"J{ra_text}{sign}{dec_text}"


def catalogue_names(
    ra: Sequence[float] | np.ndarray,
    dec: Sequence[float] | np.ndarray,
    catalogue: Table | None,
    *,
    radius_arcsec: float = 2.0,
) -> list[str]:
    """Each star's SIMBAD, VSX or Gaia DR3 name from the night catalogue, else its coordinate name."""
    from nightpipe.identify.match import match_sky

    names = [coordinate_name(float(a), float(d)) for a, d in zip(ra, dec, strict=True)]
    if catalogue is None or len(catalogue) == 0 or not names:
        return names
    cat_ra, cat_dec = np.asarray(catalogue["ra"], float), np.asarray(catalogue["dec"], float)
    radius = np.full(len(catalogue), radius_arcsec)
    found = match_sky(np.asarray(ra, float), np.asarray(dec, float), cat_ra, cat_dec, radius)
    for k, row in enumerate(found.index):
        if row < 0:
            continue
        for column in NAME_COLUMNS:
            value = str(catalogue[column][row]) if column in catalogue.colnames else ""
            if value and value not in ("--", "nan"):
                names[k] = f"Gaia DR3 {value}" if column == "gaia_source_id" else value
                break
    return names
