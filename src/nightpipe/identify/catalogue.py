"""The night's catalogue with what each star is, and the objects of interest found in the field.

:func:`annotate` adds, for every service that answered, the matched object's columns to a
star list (``simbad_id``, ``vsx_name``, ``gaia_G``...), each with ``<service>_sep`` (arcsec)
and ``<service>_n`` (how many objects were within the radius: more than one is ambiguous).
Catalogue positions with proper motions (Gaia, SIMBAD) are moved to the night's epoch first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from astropy.table import Table

from nightpipe.catalogs.propermotion import propagate
from nightpipe.identify.match import Matches, match_radius, match_sky, separation_arcsec
from nightpipe.identify.simbad import is_variable_type

# service -> (its column -> the catalogue's column)
CARRY: dict[str, dict[str, str]] = {
    "simbad": {"name": "simbad_id", "kind": "simbad_type"},
    "vsx": {"name": "vsx_name", "kind": "vsx_type", "period": "vsx_period", "range": "vsx_range"},
    "gaia": {"source_id": "gaia_source_id", "G": "gaia_G", "BP": "gaia_BP", "RP": "gaia_RP",
             "parallax": "gaia_parallax", "pmra": "gaia_pmra", "pmdec": "gaia_pmdec"},
    "milliquas": {"name": "milliquas_name", "kind": "milliquas_type", "z": "milliquas_z"},
    "colibri": {"name": "colibri_name", "kind": "colibri_type", "event_id": "colibri_event"},
}  # fmt: skip


def at_epoch(table: Table, epoch: float) -> tuple[np.ndarray, np.ndarray]:
    """The objects' positions at Julian year ``epoch`` (unchanged without proper motions)."""
    ra, dec = np.asarray(table["ra"], float), np.asarray(table["dec"], float)
    if "pmra" not in table.colnames or "pmdec" not in table.colnames:
        return ra, dec
    years = epoch - float(table.meta.get("epoch", epoch))
    return propagate(ra, dec, np.asarray(table["pmra"], float), np.asarray(table["pmdec"], float), years)


def match_table(
    ra: np.ndarray, dec: np.ndarray, table: Table, *, epoch: float, astrometric_err: float, floor: float
) -> Matches:
    """Match stars to one service's objects at the night's epoch."""
    obj_ra, obj_dec = at_epoch(table, epoch)
    radius = match_radius(astrometric_err, np.asarray(table["pos_err"], float), floor)
    return match_sky(ra, dec, obj_ra, obj_dec, radius)


def annotate(
    stars: Table,
    answers: Mapping[str, Table],
    *,
    epoch: float,
    astrometric_err: float,
    floor: float,
) -> Table:
    """A copy of ``stars`` (columns ``ra``, ``dec``) with every answering service's columns."""
    out = stars.copy(copy_data=True)
    ra, dec = np.asarray(stars["ra"], float), np.asarray(stars["dec"], float)
    for service, table in answers.items():
        carry = CARRY.get(service)
        if carry is None:
            continue
        found = match_table(ra, dec, table, epoch=epoch, astrometric_err=astrometric_err, floor=floor)
        hit = found.matched
        for source_col, out_col in carry.items():
            if source_col not in table.colnames:
                continue
            values = np.asarray(table[source_col])
            if values.dtype.kind in "fi":
                column = np.full(len(out), np.nan)
                column[hit] = values[found.index[hit]].astype(float)
            else:
                column = np.full(len(out), "", dtype=object)
                column[hit] = values[found.index[hit]].astype(str)
                column = column.astype(str)
            out[out_col] = column
        out[f"{service}_sep"] = np.round(found.separation, 3)
        out[f"{service}_n"] = found.count
    return out


def variable_label(row: Mapping[str, object]) -> str | None:
    """Why a star of the annotated catalogue is a known variable ('VSX EY UMa (EA)'), or None."""
    vsx = str(row.get("vsx_name", "") or "")
    if vsx:
        kind = str(row.get("vsx_type", "") or "")
        return f"VSX {vsx}" + (f" ({kind})" if kind else "")
    otype = str(row.get("simbad_type", "") or "")
    if otype and is_variable_type(otype):
        return f"SIMBAD {row.get('simbad_id', '')} ({otype})"
    return None


def known_variables(catalogue: Table) -> Table:
    """The annotated stars that are known variables, with why (``label``)."""
    labels = [variable_label(dict(zip(catalogue.colnames, row, strict=True))) for row in catalogue]
    keep = np.array([label is not None for label in labels], dtype=bool)
    out = catalogue[keep]
    out["label"] = np.array([label for label in labels if label is not None], dtype=str)
    return out


def objects_in_field(answers: Mapping[str, Table], centre: tuple[float, float], radius_deg: float) -> Table:
    """Every answered object of interest inside the field (stars of Gaia left out: there are many)."""
    rows: list[tuple[str, str, str, float, float]] = []
    for service, table in answers.items():
        if service == "gaia" or len(table) == 0:
            continue
        sep = separation_arcsec(np.asarray(table["ra"], float), np.asarray(table["dec"], float), *centre)
        inside = sep <= radius_deg * 3600.0
        for row in table[inside]:
            rows.append((service, str(row["name"]), str(row["kind"]), float(row["ra"]), float(row["dec"])))
    names = ("service", "name", "kind", "ra", "dec")
    if not rows:
        return Table(names=names, dtype=(str, str, str, float, float))
    return Table(rows=rows, names=names)
