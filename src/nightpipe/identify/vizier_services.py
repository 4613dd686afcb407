"""VSX, Gaia DR3 and Milliquas: one VizieR cone per field, each parsed into an identification table.

The parsers accept the column names of VizieR (``B/vsx/vsx``, ``I/355/gaiadr3``,
``VII/294``) and those of the same catalogues served elsewhere (the Gaia archive's
``gaia_source``: ``source_id``, ``phot_g_mean_mag``...; tables saved by other pipelines with
lower-case ``ra``/``dec``), so an answer recorded anywhere reads the same.
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


def vizier_fetch(catalog: str, columns: tuple[str, ...], payload: Mapping[str, Any], timeout_s: float,
                 column_filters: Mapping[str, str] | None = None) -> bytes:  # fmt: skip
    """The raw VOTable of a VizieR cone (astroquery); raises CatalogError on any failure."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.vizier import Vizier

    vizier = Vizier(
        columns=list(columns), row_limit=-1, timeout=timeout_s, column_filters=dict(column_filters or {})
    )
    centre = SkyCoord(payload["ra"] * u.deg, payload["dec"] * u.deg)
    try:
        response = vizier.query_region_async(
            centre, radius=payload["radius_deg"] * u.deg, catalog=catalog, cache=False
        )
        response.raise_for_status()
    except Exception as exc:  # network, HTTP and timeout failures of astroquery/requests
        raise CatalogError(f"VizieR query of {catalog} failed: {exc.__class__.__name__}: {exc}") from exc
    return bytes(response.content)


def _positions(answer: Table, service: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(answer)
    ra = column(answer, ("RA_ICRS", "RAJ2000", "_RAJ2000", "ra", "RA"))
    dec = column(answer, ("DE_ICRS", "DEJ2000", "_DEJ2000", "dec", "Dec", "DEC"))
    if n and (ra is None or dec is None):
        raise CatalogError(
            f"{service} answer has no position columns (columns: {answer.colnames[:12]})",
            hint="the catalogue layout changed; report it",
        )
    return floats(ra, n), floats(dec, n)


@dataclass(frozen=True)
class VizierCone:
    """What the VizieR services share: one cone on one catalogue, asking for its columns.

    A subclass sets the catalogue, its columns and its parser; ``limits`` (key: value) go into
    the payload and become VizieR column filters.
    """

    name: str = ""
    version: str = ""
    per_epoch: bool = False
    catalog: str = ""
    columns: tuple[str, ...] = ()

    def limits(self) -> dict[str, Any]:
        """Payload entries that narrow the query (none by default)."""
        return {}

    def column_filters(self, payload: Mapping[str, Any]) -> dict[str, str]:
        """VizieR column filters for the payload's limits (none by default)."""
        return {}

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        return {"service": self.name, "catalog": self.catalog, **self.limits(), **query.rounded()}

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        return vizier_fetch(self.catalog, self.columns, payload, timeout_s, self.column_filters(payload))


@dataclass(frozen=True)
class VsxService(VizierCone):
    """The AAVSO Variable Star indeX (VizieR ``B/vsx/vsx``)."""

    name: str = "vsx"
    version: str = "VizieR B/vsx/vsx"
    per_epoch: bool = False
    catalog: str = "B/vsx/vsx"
    columns: tuple[str, ...] = (
        "OID", "Name", "V", "Type", "l_max", "max", "u_max", "n_max", "f_min", "l_min", "min",
        "u_min", "n_min", "Period", "RAJ2000", "DEJ2000",
    )  # fmt: skip

    def parse(self, raw: bytes) -> Table:
        answer = read_table(raw, self.name)
        n = len(answer)
        ra, dec = _positions(answer, self.name)
        bright = floats(column(answer, ("max", "mag")), n)
        faint = strings(column(answer, ("min",)), n)
        band = strings(column(answer, ("n_max", "passband")), n)
        amp = strings(column(answer, ("f_min",)), n)  # "(" marks an amplitude instead of a minimum
        ranges = np.array([_range(b, f, a, p) for b, f, a, p in zip(bright, faint, amp, band, strict=True)])
        return identification_table(
            name=strings(column(answer, ("Name", "id", "name")), n),
            kind=strings(column(answer, ("Type",)), n),
            ra=ra,
            dec=dec,
            epoch=2000.0,
            service=self.name,
            extra={
                "period": floats(column(answer, ("Period",)), n),
                "range": ranges if n else np.array([], dtype=str),
                "oid": strings(column(answer, ("OID",)), n),
            },
        )


def _range(bright: float, faint: str, amp_flag: str, band: str) -> str:
    """'11.2-11.9 V' (or '11.2 (0.30) V' for an amplitude), as VSX writes it."""
    if not np.isfinite(bright):
        return ""
    if faint:
        text = f"{bright:.2f} ({faint})" if amp_flag == "(" else f"{bright:.2f}-{faint}"
    else:
        text = f"{bright:.2f}"
    return f"{text} {band}".strip()


@dataclass(frozen=True)
class GaiaService(VizierCone):
    """Gaia DR3 sources (VizieR ``I/355/gaiadr3``), positions at epoch 2016.0 with proper motions."""

    name: str = "gaia"
    version: str = "Gaia DR3 (VizieR I/355/gaiadr3)"
    per_epoch: bool = False
    catalog: str = "I/355/gaiadr3"
    max_mag: float = 19.0
    columns: tuple[str, ...] = (
        "Source", "RA_ICRS", "DE_ICRS", "e_RA_ICRS", "e_DE_ICRS", "pmRA", "pmDE", "Plx",
        "Gmag", "BPmag", "RPmag", "e_Gmag", "e_BPmag", "e_RPmag",
    )  # fmt: skip

    def limits(self) -> dict[str, Any]:
        return {"max_mag": self.max_mag}

    def column_filters(self, payload: Mapping[str, Any]) -> dict[str, str]:
        return {"Gmag": f"<{float(payload['max_mag']):g}"}

    def parse(self, raw: bytes) -> Table:
        answer = read_table(raw, self.name)
        n = len(answer)
        ra, dec = _positions(answer, self.name)
        source = strings(column(answer, ("Source", "source_id", "SOURCE_ID")), n)
        err_ra = floats(column(answer, ("e_RA_ICRS", "ra_error")), n)
        err_dec = floats(column(answer, ("e_DE_ICRS", "dec_error")), n)
        return identification_table(
            name=np.array([f"Gaia DR3 {s}" for s in source], dtype=object),
            kind=np.full(n, "*", dtype=object),
            ra=ra,
            dec=dec,
            pos_err=np.hypot(np.nan_to_num(err_ra), np.nan_to_num(err_dec)) / 1000.0,  # mas -> arcsec
            epoch=2016.0,
            service=self.name,
            extra={
                "source_id": source,
                "pmra": floats(column(answer, ("pmRA", "pmra")), n),
                "pmdec": floats(column(answer, ("pmDE", "pmdec")), n),
                "parallax": floats(column(answer, ("Plx", "parallax")), n),
                "G": floats(column(answer, ("Gmag", "phot_g_mean_mag")), n),
                "BP": floats(column(answer, ("BPmag", "phot_bp_mean_mag")), n),
                "RP": floats(column(answer, ("RPmag", "phot_rp_mean_mag")), n),
                **{f"e_{band}": _mag_error(answer, band, n) for band in ("G", "BP", "RP")},
            },
        )


_FLUX_SNR = {"G": "phot_g_mean_flux_over_error", "BP": "phot_bp_mean_flux_over_error",
             "RP": "phot_rp_mean_flux_over_error"}  # fmt: skip


def _mag_error(answer: Table, band: str, n: int) -> np.ndarray:
    """A band's magnitude error: VizieR's ``e_Gmag``, or 1.0857 / the archive's flux S/N."""
    direct = column(answer, (f"e_{band}mag",))
    if direct is not None:
        return floats(direct, n)
    snr = floats(column(answer, (_FLUX_SNR[band],)), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(snr > 0, 1.0857 / snr, np.nan)


@dataclass(frozen=True)
class MilliquasService(VizierCone):
    """Quasars and AGN of the Million Quasars catalogue (VizieR ``VII/294``)."""

    name: str = "milliquas"
    version: str = "Milliquas v8 (VizieR VII/294)"
    per_epoch: bool = False
    catalog: str = "VII/294"
    columns: tuple[str, ...] = ("Name", "RAJ2000", "DEJ2000", "Type", "Rmag", "Bmag", "z")

    def parse(self, raw: bytes) -> Table:
        answer = read_table(raw, self.name)
        n = len(answer)
        ra, dec = _positions(answer, self.name)
        return identification_table(
            name=strings(column(answer, ("Name",)), n),
            kind=np.array([f"QSO:{t}" for t in strings(column(answer, ("Type",)), n)], dtype=object),
            ra=ra,
            dec=dec,
            epoch=2000.0,
            service=self.name,
            extra={"z": floats(column(answer, ("z",)), n), "Rmag": floats(column(answer, ("Rmag",)), n)},
        )
