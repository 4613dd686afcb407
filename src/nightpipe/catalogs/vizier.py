"""Remote catalogues through VizieR (astroquery): request building separate from parsing.

``build_query`` makes the request payload (what is asked), ``fetch`` asks VizieR, and
``parse`` turns VizieR's answer into the standard table of :mod:`nightpipe.catalogs.schema`.
Tests feed recorded answers to ``parse`` and never touch the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.catalogs.schema import standard_table
from nightpipe.errors import CatalogError


@dataclass(frozen=True)
class VizierSpec:
    """How one VizieR catalogue maps onto the standard table."""

    name: str
    vizier_id: str
    ra: tuple[str, ...]
    dec: tuple[str, ...]
    ids: tuple[str, ...]
    bands: Mapping[str, str]  # our band -> VizieR column
    errors: Mapping[str, str] = field(default_factory=dict)
    pmra: str | None = None
    pmdec: str | None = None
    epoch: float = 2000.0
    limit_band: str = "V"


SPECS: dict[str, VizierSpec] = {
    "apass": VizierSpec(
        name="apass",
        vizier_id="II/336/apass9",
        ra=("RAJ2000",),
        dec=("DEJ2000",),
        ids=("recno", "_q"),
        bands={"V": "Vmag", "B": "Bmag", "g": "g'mag", "r": "r'mag", "i": "i'mag"},
        errors={"V": "e_Vmag", "B": "e_Bmag", "g": "e_g'mag", "r": "e_r'mag", "i": "e_i'mag"},
        epoch=2000.0,
        limit_band="V",
    ),
    "refcat2": VizierSpec(
        name="refcat2",
        vizier_id="J/ApJ/867/105/refcat2",
        ra=("RA_ICRS",),
        dec=("DE_ICRS",),
        ids=("id", "GaiaDR2"),
        bands={"G": "Gmag", "BP": "BPmag", "RP": "RPmag", "g": "gmag", "r": "rmag", "i": "imag", "z": "zmag"},
        errors={
            "G": "e_Gmag",
            "BP": "e_BPmag",
            "RP": "e_RPmag",
            "g": "e_gmag",
            "r": "e_rmag",
            "i": "e_imag",
            "z": "e_zmag",
        },
        pmra="pmRA",
        pmdec="pmDE",
        epoch=2015.5,
        limit_band="r",
    ),
    "gaia": VizierSpec(
        name="gaia",
        vizier_id="I/355/gaiadr3",
        ra=("RA_ICRS",),
        dec=("DE_ICRS",),
        ids=("Source",),
        bands={"G": "Gmag", "BP": "BPmag", "RP": "RPmag"},
        errors={"G": "e_Gmag", "BP": "e_BPmag", "RP": "e_RPmag"},
        pmra="pmRA",
        pmdec="pmDE",
        epoch=2016.0,
        limit_band="G",
    ),
    "ucac4": VizierSpec(
        name="ucac4",
        vizier_id="I/322A/out",
        ra=("RAJ2000",),
        dec=("DEJ2000",),
        ids=("UCAC4",),
        bands={"V": "Vmag", "B": "Bmag", "g": "gmag", "r": "rmag", "i": "imag", "J": "Jmag"},
        errors={"V": "e_Vmag", "B": "e_Bmag", "g": "e_gmag", "r": "e_rmag", "i": "e_imag", "J": "e_Jmag"},
        pmra="pmRA",
        pmdec="pmDE",
        epoch=2000.0,
        limit_band="V",
    ),
}


def build_query(
    spec: VizierSpec, ra: float, dec: float, radius_deg: float, mag_limit: float | None
) -> dict[str, Any]:
    """The request payload: catalogue, centre, radius, magnitude limit (rounded for caching)."""
    payload: dict[str, Any] = {
        "catalog": spec.name,
        "vizier_id": spec.vizier_id,
        "ra": round(float(ra), 5),
        "dec": round(float(dec), 5),
        "radius_deg": round(float(radius_deg), 5),
    }
    if mag_limit is not None:
        payload["column_filters"] = {spec.bands[spec.limit_band]: f"<{mag_limit:g}"}
    return payload


def _first_column(table: Table, names: tuple[str, ...]) -> Any:
    for name in names:
        if name in table.colnames:
            return table[name]
    return None


def parse(spec: VizierSpec, answer: Table) -> Table:
    """Turn a VizieR answer into the standard table.

    Raises
    ------
    CatalogError
        When the answer lacks the position columns (a changed or wrong catalogue).
    """
    ra = _first_column(answer, spec.ra)
    dec = _first_column(answer, spec.dec)
    if ra is None or dec is None:
        raise CatalogError(
            f"{spec.name} answer has no position columns {spec.ra}/{spec.dec} "
            f"(columns: {answer.colnames[:12]})",
            hint="the catalogue layout changed; clear the cache entry and report it",
        )
    ids = _first_column(answer, spec.ids)
    if ids is None:
        ids = np.arange(len(answer))
    mags = {band: answer[col] for band, col in spec.bands.items() if col in answer.colnames}
    errors = {band: answer[col] for band, col in spec.errors.items() if col in answer.colnames}
    pmra = answer[spec.pmra] if spec.pmra and spec.pmra in answer.colnames else None
    pmdec = answer[spec.pmdec] if spec.pmdec and spec.pmdec in answer.colnames else None
    return standard_table(
        ids=np.asarray(ids).astype(str),
        ra=ra,
        dec=dec,
        mags=mags,
        errors=errors,
        pmra=pmra,
        pmdec=pmdec,
        catalog=spec.name,
        epoch=spec.epoch,
    )


def fetch(spec: VizierSpec, payload: Mapping[str, Any], *, timeout_s: float) -> Table:
    """Ask VizieR (network). Raises CatalogError on any failure or an empty answer."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.vizier import Vizier

    columns = ["**"] if spec.name == "apass" else ["*", *spec.bands.values(), *spec.errors.values()]
    vizier = Vizier(
        columns=columns,
        row_limit=-1,
        timeout=timeout_s,
        column_filters=dict(payload.get("column_filters", {})),
    )
    centre = SkyCoord(payload["ra"] * u.deg, payload["dec"] * u.deg)
    try:
        result = vizier.query_region(centre, radius=payload["radius_deg"] * u.deg, catalog=spec.vizier_id)
    except Exception as exc:  # network, HTTP and parsing failures of astroquery
        raise CatalogError(
            f"VizieR query of {spec.vizier_id} failed: {exc.__class__.__name__}: {exc}",
            hint="check the network, or set catalog.offline = true to use the cache only",
        ) from exc
    if len(result) == 0:
        return parse(spec, Table({spec.ra[0]: [], spec.dec[0]: []}))
    return parse(spec, result[0])
