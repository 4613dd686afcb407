"""Reading the MPC's comet elements (``CometEls.txt``, "Orbital Elements of Comets" export format)
into numpy arrays, one entry per comet.

Column layout (MPC, "Format for comet orbits"; 1-based columns): 1-4 the periodic comet number,
5 the orbit type (``C``, ``P``, ``D``, ``X``, ``I``, ``A``), 6-12 the packed provisional designation,
15-18, 20-21 and 23-29 the year, month and day (TT) of the perihelion passage, 31-39 the perihelion
distance q (AU), 42-49 e, 52-59 the argument of perihelion, 62-69 the node, 72-79 the inclination
(degrees, ecliptic and equinox J2000), 82-89 the epoch of the osculating elements (``YYYYMMDD``,
blank for unperturbed orbits), 92-95 the absolute magnitude, 97-100 the slope parameter, 103-158 the
designation and name. Columns 1-12 are also the first twelve of an 80-column observation line.
Lines whose numbers do not read are skipped and counted; parabolic (e = 1) and hyperbolic orbits are
kept (:func:`nightpipe.movers.kepler.heliocentric` propagates them with universal variables).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from nightpipe.movers.mpcorb import calendar_jd, read_bytes

log = logging.getLogger(__name__)
_COLUMNS = {  # name: (start, stop), 0-based, stop exclusive
    "q": (30, 39),
    "e": (41, 49),
    "peri": (51, 59),
    "node": (61, 69),
    "incl": (71, 79),
}


@dataclass(frozen=True)
class Comets:
    """Osculating heliocentric perihelion elements (ecliptic J2000), one entry per comet."""

    packed: np.ndarray  # str, columns 1-12 as an observation line writes them, e.g. "    CJ95O010"
    name: np.ndarray  # str, e.g. "C/1995 O1 (Hale-Bopp)" or "1P/Halley"
    perihelion_tt: np.ndarray  # JD TT of the perihelion passage
    q: np.ndarray  # AU
    e: np.ndarray
    peri: np.ndarray  # deg
    node: np.ndarray  # deg
    incl: np.ndarray  # deg
    H: np.ndarray  # absolute total magnitude

    def __len__(self) -> int:
        return int(self.q.size)

    def take(self, index: np.ndarray) -> Comets:
        """The comets at ``index``."""
        return Comets(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _comet_row(line: str) -> dict[str, object]:
    """The fields of one element line (``ValueError`` when a number does not read)."""
    day = float(line[22:29])
    jd = calendar_jd(np.array([int(line[14:18])]), np.array([int(line[19:21])]), np.array([day]))[0]
    values = {k: float(line[a:b]) for k, (a, b) in _COLUMNS.items()}
    if not (values["q"] > 0 and values["e"] >= 0):
        raise ValueError("q must be positive and e non-negative")
    magnitude = line[91:95].strip()
    row: dict[str, object] = {
        **values,
        "packed": line[:12],
        "name": line[102:158].strip() or line[:12].strip(),
        "perihelion_tt": float(jd),
        "H": float(magnitude) if magnitude else np.nan,
    }
    return row


def parse_comets(lines: list[bytes]) -> tuple[Comets, int]:
    """The comets of ``CometEls.txt`` lines, and how many lines were skipped as unreadable."""
    rows: list[dict[str, object]] = []
    skipped = 0
    for raw in lines:
        line = raw.decode("ascii", "replace").rstrip("\r\n")
        if not line.strip():
            continue
        try:
            rows.append(_comet_row(line.ljust(168)))
        except ValueError:
            skipped += 1
    if skipped:
        log.warning("comet elements: %d unreadable lines skipped", skipped)
    names = [f.name for f in fields(Comets)]
    if not rows:
        empty = {k: np.zeros(0, dtype=str if k in ("packed", "name") else float) for k in names}
        return Comets(**empty), skipped
    columns = {k: np.array([r[k] for r in rows]) for k in names}
    for k in names:
        if k not in ("packed", "name"):
            columns[k] = columns[k].astype(float)
    return Comets(**columns), skipped


def read_comets(path: Path) -> Comets:
    """The comets of a ``CometEls.txt`` file (plain or ``.gz``)."""
    if not path.is_file():
        raise FileNotFoundError(f"movers.comets: no file {path} (download CometEls.txt or a subset of it)")
    comets, _ = parse_comets(read_bytes(path).splitlines())
    if not len(comets):
        raise ValueError(f"movers.comets: {path} has no readable comet line (is it CometEls.txt format?)")
    return comets
