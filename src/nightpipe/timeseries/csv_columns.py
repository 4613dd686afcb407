"""Reading a light-curve table and finding its time, flux and error columns by name and values.

The rules (which names count, how offsets and MJD are recognised) are described in
``nightpipe.timeseries.csvmode``, which turns the columns into a LightCurve.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from nightpipe.errors import TimeseriesError

log = logging.getLogger(__name__)


TIME_NAMES = (
    "bjd_tdb",
    "bjd-tdb",
    "bjd",
    "time_bjd",
    "bjd_tdb_mid",
    "j.d.-2400000",
    "jd_utc",
    "jd-utc",
    "jd",
    "jd_mid",
    "hjd",
    "mjd",
    "mjd_utc",
    "mjd-obs",
    "time",
    "date",
    "t",
)
FLUX_NAMES = (
    "rel_flux_t1",
    "rel_flux",
    "flux",
    "norm_flux",
    "normalized_flux",
    "relative_flux",
    "diff",
    "f",
    "mag",
    "magnitude",
    "rel_mag",
    "diff_mag",
)
ERR_SUFFIXES = ("_err", "_error", "err", "error", "_sigma", "_e", "_unc")
ERR_NAMES = ("rel_flux_err_t1", "flux_err", "err", "error", "sigma", "e_flux", "unc", "mag_err", "e_mag")
AUX_COLUMNS = {
    "airmass": ("airmass", "AIRMASS"),
    "fwhm": ("FWHM_Mean", "fwhm", "FWHM", "fwhm_px"),
    "sky": ("Sky/Pixel_T1", "sky", "SKY", "bkg"),
    "x": ("X(FITS)_T1", "X(IJ)_T1", "x", "xcentroid", "X"),
    "y": ("Y(FITS)_T1", "Y(IJ)_T1", "y", "ycentroid", "Y"),
}


@dataclass(frozen=True)
class TimeColumn:
    """The time column found in a table: its name, the offset to add and the time scale."""

    name: str
    offset: float
    scale: str  # "BJD_TDB" or "JD_UTC"
    note: str


def read_table(path: Path | str) -> Table:
    """Read a light-curve table: CSV, tab/whitespace text, ECSV, or EXOTIC's JSON (time, flux[, error]).

    Raises
    ------
    TimeseriesError
        When the file is missing, empty or not a table; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise TimeseriesError("light-curve file not found", path=path, hint="check the path")
    if path.suffix.lower() == ".json":
        return _read_json(path)
    try:
        if path.suffix.lower() == ".ecsv":
            table = Table.read(path, format="ascii.ecsv")
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            first = next(
                (line for line in text.splitlines() if line.strip() and not line.startswith("#")), ""
            )
            fmt = "csv" if first.count(",") >= 1 else "tab" if "\t" in first else "basic"
            table = Table.read(path, format=f"ascii.{fmt}", comment="#")
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, StopIteration) as exc:
        raise TimeseriesError(
            f"not a readable light-curve table ({exc})",
            path=path,
            hint="give a CSV with a header line naming a time and a flux column",
        ) from None
    if len(table) == 0:
        raise TimeseriesError("the table has no rows", path=path)
    return table


def _read_json(path: Path) -> Table:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TimeseriesError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict) or "time" not in data or "flux" not in data:
        raise TimeseriesError(
            "JSON light curve needs 'time' and 'flux' lists (EXOTIC sampledata format)", path=path
        )
    columns = {k: v for k, v in data.items() if isinstance(v, list) and len(v) == len(data["time"])}
    table = Table(columns)
    table.meta["name"] = data.get("name")
    if "time" in table.colnames:
        table.rename_column("time", "BJD_TDB")  # EXOTIC writes BJD_TDB times
        table.meta["time_note"] = "EXOTIC JSON 'time' taken as BJD_TDB"
    return table


def _offset_in_name(name: str) -> float | None:
    match = re.search(r"[-\u2212]\s*(2[0-9]{6}(?:\.5)?)", name)
    return float(match.group(1)) if match else None


def detect_time_column(
    table: Table, name: str | None = None, *, path: Path | str | None = None
) -> TimeColumn:
    """Find (or check) the time column and decide its offset and scale (rules in the module doc)."""
    lower = {c.lower().strip(): c for c in table.colnames}
    col = None
    if name is not None:
        col = name if name in table.colnames else lower.get(name.lower())
        if col is None:
            raise TimeseriesError(
                f"no column named {name!r}", path=path, hint=f"columns are: {', '.join(table.colnames)}"
            )
    else:
        for candidate in TIME_NAMES:
            if candidate in lower:
                col = lower[candidate]
                break
        if col is None:
            for key, original in lower.items():
                if any(tag in key for tag in ("bjd", "jd", "time", "mjd")):
                    col = original
                    break
    if col is None:
        raise TimeseriesError(
            "no time column found",
            path=path,
            hint=f"name it with --time-col (columns: {', '.join(table.colnames)})",
        )
    values = np.asarray(table[col], dtype=np.float64)
    key = col.lower()
    offset = _offset_in_name(col)
    note = f"column {col!r}"
    if offset is None:
        if "mjd" in key:
            offset = 2400000.5
        else:
            median = float(np.nanmedian(values))
            if median > 2_400_000:
                offset = 0.0
            elif 10_000 < median < 100_000:
                offset = 2400000.5
                note += " read as MJD from its values"
                log.info("time column %r holds values near %.0f: read as MJD", col, median)
            else:
                raise TimeseriesError(
                    f"time column {col!r} holds values near {median:g}, which are not JD or MJD",
                    path=path,
                    hint="give absolute times (JD, MJD or BJD) so that the ephemeris applies",
                )
    if "bjd" in key:
        scale = "BJD_TDB"
    elif "hjd" in key:
        scale = "BJD_TDB"
        note += " (HJD taken as BJD_TDB: they differ by about a minute)"
    else:
        scale = "JD_UTC"
    return TimeColumn(col, offset, scale, note)


def detect_flux_columns(
    table: Table, flux: str | None = None, err: str | None = None, *, path: Path | str | None = None
) -> tuple[str, str | None]:
    """Find the relative-flux (or magnitude) column and its error column (None when absent)."""
    lower = {c.lower().strip(): c for c in table.colnames}

    def find(name: str) -> str:
        found = name if name in table.colnames else lower.get(name.lower())
        if found is None:
            raise TimeseriesError(
                f"no column named {name!r}", path=path, hint=f"columns are: {', '.join(table.colnames)}"
            )
        return found

    flux_col = find(flux) if flux else next((lower[n] for n in FLUX_NAMES if n in lower), None)
    if flux_col is None:
        raise TimeseriesError(
            "no flux column found",
            path=path,
            hint=f"name it with --flux-col (columns: {', '.join(table.colnames)})",
        )
    if err:
        return flux_col, find(err)
    fl = flux_col.lower()
    candidates = [fl.replace("flux", "flux_err"), *(fl + s for s in ERR_SUFFIXES), *ERR_NAMES]
    err_col = next((lower[c] for c in candidates if c in lower and lower[c] != flux_col), None)
    return flux_col, err_col
