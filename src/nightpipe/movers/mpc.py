"""Reports the Minor Planet Center reads: 80-column observation lines and ADES PSV.

The 80-column layout (MPC, "Format for optical astrometric observations"): columns 1-5 the
packed number, 6-12 the provisional or temporary designation, 13 the discovery asterisk,
14 note 1, 15 note 2 (``C``: CCD), 16-32 the UTC date ``YYYY MM DD.ddddd``, 33-44 RA
``HH MM SS.dd``, 45-56 Dec ``sDD MM SS.d``, 66-70 the magnitude, 71 its band, 78-80 the
observatory code (column 72: the reference catalogue's code). ADES PSV has a header of ``#``
and ``!`` lines and ``|``-separated columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from nightpipe.movers.designations import ades_ids

JD_UNIX = 2440587.5


@dataclass(frozen=True)
class Observation:
    """One measured position of a moving object."""

    designation: str  # provisional designation, or a temporary one of at most 7 characters
    number: str  # packed minor-planet number ('' when unnumbered)
    jd_utc: float
    ra: float  # deg
    dec: float  # deg
    mag: float | None
    band: str
    station: str  # MPC observatory code
    rms_ra_arcsec: float | None = None  # RA x cos(Dec)
    rms_dec_arcsec: float | None = None
    rms_mag: float | None = None
    discovery: bool = False
    catalogue_code: str = " "  # column 72: the MPC code of the astrometric reference catalogue


def _utc(jd: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=jd - JD_UNIX)


def _date(jd: float) -> str:
    when = _utc(jd)
    start = datetime(when.year, when.month, when.day, tzinfo=UTC)
    fraction = (when - start).total_seconds() / 86400.0
    day = f"{when.day + fraction:08.5f}"
    return f"{when.year:04d} {when.month:02d} {day}"


def _sexagesimal(value: float, *, hours: bool) -> str:
    total = (value % 360.0) / 15.0 if hours else abs(value)
    units, rest = divmod(total * 3600.0, 3600.0)
    minutes, seconds = divmod(rest, 60.0)
    digits = 2 if hours else 1
    seconds = round(seconds, digits)
    if seconds >= 60.0:
        seconds, minutes = 0.0, minutes + 1
    if minutes >= 60:
        minutes, units = 0, units + 1
    text = f"{int(units):02d} {int(minutes):02d} {seconds:0{3 + digits}.{digits}f}"
    return text if hours else ("-" if value < 0 else "+") + text


def mpc80_line(obs: Observation) -> str:
    """The 80-column line of one observation."""
    mag = f"{obs.mag:4.1f} " if obs.mag is not None and np.isfinite(obs.mag) else "     "
    line = (
        f"{obs.number[:5]:>5}{obs.designation[:7]:<7}{'*' if obs.discovery else ' '} C"
        f"{_date(obs.jd_utc)} {_sexagesimal(obs.ra, hours=True)} {_sexagesimal(obs.dec, hours=False)} "
        f"{'':9}{mag}{obs.band[:1]:1}{obs.catalogue_code[:1]:1}{'':5}{obs.station[:3]:>3}"
    )
    if len(line) != 80:
        raise ValueError(f"an MPC line must be 80 characters, got {len(line)}: {line!r}")
    return line


def parse_mpc80(line: str) -> dict[str, object]:
    """The fields of an 80-column line (for checks and for reading others' reports)."""
    ra_h, ra_m, ra_s = (float(v) for v in line[32:44].split())
    sign = -1.0 if line[44] == "-" else 1.0
    de_d, de_m, de_s = (float(v) for v in line[45:56].split())
    year, month, day = line[15:32].split()
    mag = line[65:70].strip()
    return {
        "number": line[0:5].strip(),
        "designation": line[5:12].strip(),
        "discovery": line[12] == "*",
        "note2": line[14],
        "date": (int(year), int(month), float(day)),
        "ra": 15.0 * (ra_h + ra_m / 60 + ra_s / 3600),
        "dec": sign * (de_d + de_m / 60 + de_s / 3600),
        "mag": float(mag) if mag else None,
        "band": line[70].strip(),
        "catalogue_code": line[71],
        "station": line[77:80],
    }


def ades_psv(observations: list[Observation], *, observer: str, site_code: str, catalogue: str) -> str:
    """An ADES (version 2017) PSV file of the observations."""
    head = ["# version=2017", "# observatory", f"! mpcCode {site_code}", "# submitter", f"! name {observer}"]
    head += ["# observers", f"! name {observer}", "# measurers", f"! name {observer}"]
    columns = ["permID", "provID", "trkSub", "mode", "stn", "obsTime", "ra", "dec", "rmsRA", "rmsDec"]
    columns += ["astCat", "mag", "rmsMag", "band"]
    rows = [" | ".join(columns)]
    for o in observations:
        when = _utc(o.jd_utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        perm, prov, trk = ades_ids(o.number, o.designation)
        rows.append(" | ".join([
            perm, prov, trk, "CCD", o.station, when,
            f"{o.ra:.6f}", f"{o.dec:+.6f}", _opt(o.rms_ra_arcsec, 3), _opt(o.rms_dec_arcsec, 3), catalogue,
            _opt(o.mag, 2), _opt(o.rms_mag, 2), o.band if o.mag is not None else "",
        ]))  # fmt: skip
    return "\n".join(head + rows) + "\n"


def _opt(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and np.isfinite(value) else ""
