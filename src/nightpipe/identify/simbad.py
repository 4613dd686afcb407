"""SIMBAD: the main identifier and object type of everything known in the field.

One query per field through SIMBAD's TAP service (``basic`` table, a cone). The parser reads
both what TAP sends (``main_id``, ``ra``/``dec`` in degrees, ``otype``) and SIMBAD's older
script answers (``MAIN_ID``, sexagesimal ``RA``/``DEC``, ``OTYPE``), which is how astroquery's
own recordings are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.errors import CatalogError
from nightpipe.identify.service import (
    FieldQuery,
    column,
    floats,
    identification_table,
    read_table,
    strings,
)

TAP_SYNC = "https://simbad.cds.unistra.fr/simbad/sim-tap/sync"
COLUMNS = ("main_id", "ra", "dec", "otype", "pmra", "pmdec", "coo_err_maj")

# SIMBAD object types that are variable stars (never comparison stars).
VARIABLE_TYPES = frozenset(
    {
        "V*", "Pu*", "RR*", "Ce*", "dS*", "RV*", "WV*", "bC*", "cC*", "gD*", "SX*", "LP*", "Mi*",
        "sr*", "Ir*", "Er*", "Ro*", "Fl*", "El*", "EB*", "CV*", "No*", "Sy*", "XB*", "Be*", "Or*",
        "BY*", "RS*", "a2*", "bS*", "Ae*", "TT*", "HB*", "WR*", "C*",
        "Variable", "RRLyrae", "Cepheid", "EclBin", "LongPeriodV*", "Mira", "deltaCep",
    }
)  # fmt: skip


def is_variable_type(otype: str) -> bool:
    """Whether a SIMBAD object type names a variable star (``V*``, ``RR*``, ``EB*``, ...)."""
    cleaned = otype.strip().rstrip("?")
    return cleaned in VARIABLE_TYPES or cleaned.endswith("V*")


def adql_cone(query: FieldQuery) -> str:
    """The ADQL of a cone on ``basic``; only validated numbers enter it."""
    ra, dec, radius = (float(query.ra), float(query.dec), float(query.radius_deg))
    if not (np.isfinite([ra, dec, radius]).all() and 0 < radius <= 10):
        raise CatalogError(f"SIMBAD cone out of range: ra={ra} dec={dec} radius={radius} deg")
    return (
        f"SELECT {', '.join(COLUMNS)} FROM basic WHERE "
        f"CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra:.6f}, {dec:.6f}, {radius:.6f})) = 1"
    )


@dataclass(frozen=True)
class SimbadService:
    """SIMBAD through TAP."""

    name: str = "simbad"
    version: str = "SIMBAD TAP basic"
    per_epoch: bool = False

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        return {"service": self.name, **query.rounded()}

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        import requests

        query = FieldQuery(payload["ra"], payload["dec"], payload["radius_deg"])
        params = {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable", "QUERY": adql_cone(query)}
        try:
            response = requests.post(TAP_SYNC, data=params, timeout=timeout_s)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise CatalogError(f"SIMBAD query failed: {exc.__class__.__name__}: {exc}") from exc
        return bytes(response.content)

    def parse(self, raw: bytes) -> Table:
        answer = read_table(raw, self.name)
        n = len(answer)
        ids = column(answer, ("main_id", "MAIN_ID"))
        if n and ids is None:
            raise CatalogError(
                f"SIMBAD answer has no main_id column (columns: {answer.colnames[:10]})",
                hint="SIMBAD changed its answer; report it",
            )
        ra, dec = _positions(answer)
        err = floats(column(answer, ("coo_err_maj", "COO_ERR_MAJA")), n)
        return identification_table(
            name=strings(ids, n),
            kind=strings(column(answer, ("otype", "OTYPE", "otype_txt", "OTYPE_S")), n),
            ra=ra,
            dec=dec,
            pos_err=np.nan_to_num(err) / 1000.0,  # mas -> arcsec
            epoch=2000.0,
            service=self.name,
            extra={
                "pmra": floats(column(answer, ("pmra", "PMRA")), n),
                "pmdec": floats(column(answer, ("pmdec", "PMDEC")), n),
            },
        )


def _positions(answer: Table) -> tuple[np.ndarray, np.ndarray]:
    """Degrees from TAP's numeric columns or the script interface's sexagesimal strings."""
    n = len(answer)
    ra = column(answer, ("ra", "RA_d", "RA"))
    dec = column(answer, ("dec", "DEC_d", "DEC"))
    if ra is None or dec is None:
        if n:
            raise CatalogError(f"SIMBAD answer has no positions (columns: {answer.colnames[:10]})")
        return np.array([]), np.array([])
    if ra.dtype.kind in "fi":
        return floats(ra, n), floats(dec, n)
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra_s, dec_s = strings(ra, n), strings(dec, n)
    good = (ra_s != "") & (dec_s != "")
    out_ra, out_dec = np.full(n, np.nan), np.full(n, np.nan)
    if good.any():
        coords = SkyCoord(list(ra_s[good]), list(dec_s[good]), unit=(u.hourangle, u.deg))
        out_ra[good], out_dec[good] = coords.ra.deg, coords.dec.deg
    return out_ra, out_dec
