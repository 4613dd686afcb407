"""The one table shape every reference catalogue is turned into.

Columns: ``id`` (str), ``ra``, ``dec`` (deg, at ``meta['epoch']``), ``pmra``, ``pmdec``
(mas/yr, NaN when unknown) and one column per band present, named as in :data:`BANDS`,
with its error ``e_<band>`` (NaN when unknown). ``meta`` holds ``catalog``, ``epoch``
(Julian year of the positions) and ``query``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from astropy.table import Table

BANDS = ("B", "V", "R", "I", "G", "BP", "RP", "g", "r", "i", "z", "BT", "VT", "J", "H", "K")


def standard_table(
    *,
    ids: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    mags: Mapping[str, np.ndarray],
    errors: Mapping[str, np.ndarray] | None = None,
    pmra: np.ndarray | None = None,
    pmdec: np.ndarray | None = None,
    catalog: str,
    epoch: float,
) -> Table:
    """Assemble a reference table in the standard shape (missing values become NaN)."""
    n = len(ra)
    table = Table()
    table["id"] = np.asarray(ids).astype(str)
    table["ra"] = _as_float(ra)
    table["dec"] = _as_float(dec)
    table["pmra"] = _as_float(pmra) if pmra is not None else np.full(n, np.nan)
    table["pmdec"] = _as_float(pmdec) if pmdec is not None else np.full(n, np.nan)
    for band in BANDS:
        if band in mags:
            table[band] = _as_float(mags[band])
            err = (errors or {}).get(band)
            table[f"e_{band}"] = _as_float(err) if err is not None else np.full(n, np.nan)
    table.meta.update({"catalog": catalog, "epoch": float(epoch)})
    return table


def _as_float(values: object) -> np.ndarray:
    """Float array with masked entries as NaN."""
    array: np.ma.MaskedArray = np.ma.asarray(values)
    return np.asarray(np.ma.filled(array.astype(float), np.nan), dtype=float)


def bands_of(table: Table) -> tuple[str, ...]:
    """The photometric bands a standard table carries."""
    return tuple(b for b in BANDS if b in table.colnames)
