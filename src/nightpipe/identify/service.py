"""What every identification service is: a query, a fetch of raw bytes, a parser of those bytes.

A :class:`Service` turns a :class:`FieldQuery` into a request payload (what is asked: it keys
the cache), fetches the raw answer (network; astroquery or HTTP) and parses raw bytes into an
*identification table*: one row per object with ``name``, ``kind`` (the object type as the
service writes it), ``ra``, ``dec`` (deg, at ``meta['epoch']``, a Julian year), ``pos_err``
(arcsec, 0 when unknown) and the service's own columns. Parsing never touches the network,
so recorded answers and cached ones go through the same code as live ones.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from astropy.table import Table

from nightpipe.errors import CatalogError


@dataclass(frozen=True)
class FieldQuery:
    """A cone on the sky, and the moment it is asked for (for moving objects and transients)."""

    ra: float
    dec: float
    radius_deg: float
    epoch_jd: float | None = None

    def rounded(self, *, with_epoch: bool = False) -> dict[str, float]:
        """The cone (and, for moving objects and events, the epoch) as cache-friendly numbers."""
        out = {"ra": round(self.ra, 5), "dec": round(self.dec, 5), "radius_deg": round(self.radius_deg, 5)}
        if with_epoch and self.epoch_jd is not None:
            out["epoch_jd"] = round(self.epoch_jd, 4)
        return out


Fetch = Callable[[Mapping[str, Any], float], bytes]


class Service(Protocol):
    """One remote service, seen by the lookup."""

    @property
    def name(self) -> str:
        """The service's short name (``simbad``, ``vsx``...), also its cache folder."""
        ...

    @property
    def version(self) -> str:
        """What answered (recorded beside each cached answer)."""
        ...

    @property
    def per_epoch(self) -> bool:
        """Whether the answer depends on the epoch (moving objects): one query per epoch."""
        ...

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        """What is asked (no secrets: it is written into the cache)."""
        ...

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        """The raw answer (network); raises CatalogError on any failure."""
        ...

    def parse(self, raw: bytes) -> Table:
        """The identification table of a raw answer; raises CatalogError when malformed."""
        ...


def read_table(raw: bytes, service: str, *, use_ids: bool = False) -> Table:
    """A table from a service's raw bytes: VOTable (first table with rows), FITS or ECSV.

    SIMBAD's script interface puts a text preamble before the VOTable; it is skipped.
    ``use_ids`` names VOTable columns by their ID rather than their name (SkyBoT).
    """
    from astropy.io import fits, votable

    try:
        if raw.startswith(b"SIMPLE"):
            with fits.open(io.BytesIO(raw)) as hdul:
                return Table(hdul[1].data, meta=dict(hdul[1].header))
        if raw.lstrip().startswith(b"# %ECSV"):
            return Table.read(raw.decode(), format="ascii.ecsv")
        start = raw.find(b"<?xml")
        if start < 0:
            start = raw.find(b"<VOTABLE")
        if start < 0:
            raise ValueError("neither a VOTable, FITS nor ECSV")
        parsed = votable.parse(io.BytesIO(raw[start:]), verify="ignore")
        tables = list(parsed.iter_tables())
        if not tables:
            return Table()
        chosen = next((t for t in tables if t.nrows), tables[0])
        return chosen.to_table(use_names_over_ids=not use_ids)
    except Exception as exc:  # any parser's error: the answer is malformed
        raise CatalogError(
            f"{service} answer is malformed: {exc.__class__.__name__}: {exc}",
            hint="the cached file is ignored; fetch again online or report the service's change",
        ) from exc


def column(table: Table, names: Sequence[str], *, default: Any = None) -> Any:
    """The first of ``names`` that ``table`` has (``default`` when none)."""
    for name in names:
        if name in table.colnames:
            return table[name]
    return default


def floats(values: Any, n: int) -> np.ndarray:
    """Floats with masked or missing entries as NaN (``n`` NaNs when ``values`` is None)."""
    if values is None:
        return np.full(n, np.nan)
    array: np.ma.MaskedArray = np.ma.asarray(values)
    try:
        return np.asarray(np.ma.filled(array.astype(float), np.nan), dtype=float)
    except (TypeError, ValueError):
        return np.array([_to_float(v) for v in np.ma.filled(array.astype(object), None)], dtype=float)


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def strings(values: Any, n: int) -> np.ndarray:
    """Stripped strings with masked entries as empty strings."""
    if values is None:
        return np.full(n, "", dtype=object)
    filled = np.ma.filled(np.ma.asarray(values).astype(str), "")
    out = np.array([str(v).strip() for v in filled], dtype=object)
    out[(out == "--") | (out == "-")] = ""
    return out


def identification_table(
    *,
    name: np.ndarray,
    kind: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    epoch: float,
    service: str,
    pos_err: np.ndarray | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Table:
    """Assemble the standard identification table."""
    n = len(ra)
    table = Table()
    table["name"] = np.asarray(name, dtype=str) if n else np.array([], dtype=str)
    table["kind"] = np.asarray(kind, dtype=str) if n else np.array([], dtype=str)
    table["ra"] = np.asarray(ra, float)
    table["dec"] = np.asarray(dec, float)
    table["pos_err"] = np.nan_to_num(np.asarray(pos_err, float)) if pos_err is not None else np.zeros(n)
    for key, values in (extra or {}).items():
        table[key] = values
    keep = np.isfinite(table["ra"]) & np.isfinite(table["dec"])
    table = table[keep]
    table.meta.update({"service": service, "epoch": float(epoch)})
    return table
