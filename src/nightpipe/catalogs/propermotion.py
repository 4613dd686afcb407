"""Moving catalogue positions to the epoch of the observation."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

MAS_PER_DEG = 3.6e6


def propagate(
    ra: np.ndarray, dec: np.ndarray, pmra: np.ndarray, pmdec: np.ndarray, years: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear proper-motion propagation over ``years`` (``pmra`` includes cos(dec), mas/yr).

    NaN proper motions leave the position unchanged. Accurate to well under a
    milliarcsecond for stars and the decades of interest here.
    """
    pmra = np.nan_to_num(np.asarray(pmra, float))
    pmdec = np.nan_to_num(np.asarray(pmdec, float))
    dec_new = np.asarray(dec, float) + pmdec * years / MAS_PER_DEG
    cosd = np.cos(np.radians(np.asarray(dec, float)))
    ra_new = np.asarray(ra, float) + pmra * years / MAS_PER_DEG / np.where(cosd == 0, 1.0, cosd)
    return np.mod(ra_new, 360.0), dec_new


def at_epoch(table: Table, epoch: float) -> Table:
    """A copy of a standard table with positions moved to Julian year ``epoch``."""
    out = table.copy()
    years = epoch - float(table.meta.get("epoch", epoch))
    if years != 0.0:
        out["ra"], out["dec"] = propagate(table["ra"], table["dec"], table["pmra"], table["pmdec"], years)
        out.meta["epoch"] = float(epoch)
    return out
