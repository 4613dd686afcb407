"""Which catalogue band stands for a filter, and transformations between bands.

Documented transformations used (each adds its own scatter to the reference error):

- Gaia DR3 G, BP, RP to Johnson-Cousins V, R, I: Riello et al. (2021), A&A 649, A3,
  Table C.2 polynomials in (BP - RP); scatter 0.030, 0.032, 0.038 mag.
- APASS/SDSS g, r, i to V and R: Jester et al. (2005) V = g - 0.59 (g - r) - 0.01 (0.01 mag)
  and Jordi et al. (2006) R - r = -0.153 (r - i) - 0.117 (0.003 mag).
- Tycho-2 VT to V: V = VT - 0.09 (BT - VT) (ESA 1997); for unfiltered ("clear") cameras the
  catalogue band itself is used and only a zero point is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table

# filter name (lower case) -> photometric system band
FILTER_BANDS = {
    "v": "V",
    "johnson v": "V",
    "b": "B",
    "r": "R",
    "rc": "R",
    "cousins r": "R",
    "i": "I",
    "ic": "I",
    "sr": "r",
    "r'": "r",
    "sloan r": "r",
    "rp": "r",
    "sg": "g",
    "g'": "g",
    "sloan g": "g",
    "si": "i",
    "i'": "i",
    "sloan i": "i",
    "clear": "clear",
    "c": "clear",
    "cv": "clear",
    "l": "clear",
    "lum": "clear",
    "luminance": "clear",
    "none": "clear",
    "open": "clear",
    "": "clear",
}

_GAIA_POLY = {
    # G - X = sum c_k (BP-RP)^k
    "V": ((-0.02704, 0.01424, -0.2156, 0.01426), 0.03017),
    "R": ((-0.02275, 0.3961, -0.1243, -0.01396, 0.003775), 0.03167),
    "I": ((0.01753, 0.76, -0.0991), 0.03765),
}


@dataclass(frozen=True)
class Reference:
    """Reference magnitudes in the band of a filter, their errors and a colour for colour terms."""

    band: str
    source: str
    mag: np.ndarray
    err: np.ndarray
    colour: np.ndarray


def filter_band(filter_name: str | None) -> str:
    """The photometric band a filter stands for (``'clear'`` for unfiltered)."""
    key = (filter_name or "").strip().lower()
    return FILTER_BANDS.get(key, filter_name.strip() if filter_name else "clear")


def _col(table: Table, name: str) -> np.ndarray:
    if name in table.colnames:
        return np.asarray(table[name], float)
    return np.full(len(table), np.nan)


def reference_magnitudes(table: Table, band: str) -> Reference:
    """Reference magnitudes in ``band`` from whatever a standard catalogue table carries.

    For ``'clear'``: Gaia G, else VT, else V, else r. Otherwise the band itself when
    present, else a documented transformation.
    """
    n = len(table)
    nan = np.full(n, np.nan)
    if band == "clear":
        for name in ("G", "VT", "V", "r"):
            if name in table.colnames:
                colour = (
                    _col(table, "BP") - _col(table, "RP")
                    if name == "G"
                    else _col(table, "B") - _col(table, "V")
                )
                return Reference(
                    name, name, _col(table, name), np.nan_to_num(_col(table, f"e_{name}")), colour
                )
        return Reference(band, "none", nan, nan, nan)
    if band in table.colnames:
        colour = (
            _col(table, "B") - _col(table, "V")
            if "B" in table.colnames
            else _col(table, "g") - _col(table, "r")
        )
        return Reference(band, band, _col(table, band), np.nan_to_num(_col(table, f"e_{band}")), colour)
    if band in _GAIA_POLY and {"G", "BP", "RP"} <= set(table.colnames):
        coeffs, scatter = _GAIA_POLY[band]
        bprp = _col(table, "BP") - _col(table, "RP")
        g_minus_x = np.polynomial.polynomial.polyval(bprp, coeffs)
        ok = (bprp > -0.5) & (bprp < 5.0)
        mag = np.where(ok, _col(table, "G") - g_minus_x, np.nan)
        err = np.hypot(np.nan_to_num(_col(table, "e_G")), scatter)
        return Reference(band, "gaia", mag, err, bprp)
    if band == "V" and {"g", "r"} <= set(table.colnames):
        g, r = _col(table, "g"), _col(table, "r")
        err = np.hypot(np.nan_to_num(_col(table, "e_g")), 0.01)
        return Reference(band, "g,r (Jester 2005)", g - 0.59 * (g - r) - 0.01, err, g - r)
    if band == "R" and {"r", "i"} <= set(table.colnames):
        r, i = _col(table, "r"), _col(table, "i")
        err = np.hypot(np.nan_to_num(_col(table, "e_r")), 0.003)
        return Reference(band, "r,i (Jordi 2006)", r - 0.153 * (r - i) - 0.117, err, r - i)
    if band == "V" and "VT" in table.colnames:
        vt, bt = _col(table, "VT"), _col(table, "BT")
        mag = np.where(np.isfinite(bt), vt - 0.09 * (bt - vt), vt)
        return Reference(band, "VT (ESA 1997)", mag, np.full(n, 0.05), bt - vt)
    return Reference(band, "none", nan, nan, nan)
