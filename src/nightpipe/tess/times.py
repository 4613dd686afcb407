"""Time systems of TESS and Kepler/K2 products: BTJD and BKJD to BJD_TDB.

TESS times are BTJD = BJD_TDB - 2457000, Kepler and K2 times BKJD = BJD_TDB - 2454833.
The offset is read from the header (``BJDREFI`` + ``BJDREFF``), and the keywords
``TIMEREF`` (``SOLARSYSTEM`` for barycentric times) and ``TIMESYS`` (``TDB``) say whether
the times are truly BJD_TDB.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from nightpipe.errors import HeaderError

log = logging.getLogger(__name__)

MISSION_BJDREF: dict[str, float] = {"TESS": 2457000.0, "Kepler": 2454833.0, "K2": 2454833.0}
MISSION_LABEL: dict[str, str] = {"TESS": "BTJD", "Kepler": "BKJD", "K2": "BKJD"}


@dataclass(frozen=True)
class TimeSystem:
    """How the times of a file relate to BJD_TDB.

    Attributes
    ----------
    offset
        Days to add to the file's times to get a Julian date (``BJDREFI + BJDREFF``).
    scale
        The time scale (``TIMESYS``), normally ``TDB``.
    reference
        Where times are referred to (``TIMEREF``): ``SOLARSYSTEM`` means barycentric.
    label
        The name of the file's own time axis (``BTJD``, ``BKJD`` or ``BJD``).
    notes
        Assumptions made because keywords were missing.
    shift_days
        Added to reach mid-cadence when the times mark another point of the cadence
        (``(0.5 - TIMEPIXR) * TIMEDEL``; 0 for SPOC products, whose TIMEPIXR is 0.5).
    """

    offset: float
    scale: str
    reference: str
    label: str
    notes: tuple[str, ...] = ()
    shift_days: float = 0.0

    @property
    def is_bjd_tdb(self) -> bool:
        """True when the times, plus :attr:`offset`, are barycentric dynamical times."""
        return self.scale == "TDB" and self.reference == "SOLARSYSTEM"

    @property
    def description(self) -> str:
        """One line for provenance records: what the times are and where they came from."""
        what = "BJD_TDB" if self.is_bjd_tdb else f"JD_{self.scale} (TIMEREF={self.reference})"
        text = f"{what} = {self.label} + {self.offset:.6f}"
        return text + (f"; {'; '.join(self.notes)}" if self.notes else "")

    def to_bjd(self, times: np.ndarray) -> np.ndarray:
        """Full Julian dates (BJD_TDB when :attr:`is_bjd_tdb`) of the file's times.

        Examples
        --------
        >>> ts = TimeSystem(2457000.0, "TDB", "SOLARSYSTEM", "BTJD")
        >>> float(ts.to_bjd(np.array([1325.5]))[0])
        2458325.5
        """
        return np.asarray(times, dtype=np.float64) + self.offset + self.shift_days


def _number(header: fits.Header, key: str, path: Path | str | None) -> float | None:
    value = header.get(key)
    if value is None or isinstance(value, fits.card.Undefined) or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HeaderError(
            f"keyword {key}={value!r} is not a number",
            path=path,
            hint="fix the header or re-download the file",
        ) from None


def time_system_from_header(
    header: fits.Header, mission: str, *, path: Path | str | None = None
) -> TimeSystem:
    """Read the time system from a header (an extension header merged with the primary one).

    Parameters
    ----------
    header
        Header holding ``BJDREFI``/``BJDREFF``, ``TIMEREF`` and ``TIMESYS`` (or some of them).
    mission
        ``TESS``, ``Kepler`` or ``K2``: gives the reference when ``BJDREFI`` is missing.
    path
        The file, for messages.

    Raises
    ------
    HeaderError
        When a keyword is not a number, or the reference is missing and the mission unknown.
    """
    notes: list[str] = []
    refi = _number(header, "BJDREFI", path)
    reff = _number(header, "BJDREFF", path) or 0.0
    if refi is None:
        combined = _number(header, "BJDREF", path)
        if combined is not None:
            refi, reff = combined, 0.0
        elif mission in MISSION_BJDREF:
            refi = MISSION_BJDREF[mission]
            notes.append(f"BJDREFI missing, {mission} reference {refi:.0f} assumed")
        else:
            raise HeaderError(
                "no BJDREFI keyword and unknown mission: cannot convert times to BJD",
                path=path,
                hint="add BJDREFI/BJDREFF to the header",
            )
    offset = float(refi) + float(reff)
    scale = str(header.get("TIMESYS", "") or "").strip().upper()
    if not scale:
        scale = "TDB"
        notes.append("TIMESYS missing, TDB assumed")
    reference = str(header.get("TIMEREF", "") or "").strip().upper()
    if not reference:
        reference = "SOLARSYSTEM"
        notes.append("TIMEREF missing, barycentric times assumed")
    label = MISSION_LABEL.get(mission, "BJD") if offset > 0 else "BJD"
    shift = 0.0
    pixr = _number(header, "TIMEPIXR", path)
    timedel = _number(header, "TIMEDEL", path)
    if pixr is not None and timedel is not None and pixr != 0.5:
        shift = (0.5 - pixr) * timedel
        notes.append(f"TIMEPIXR={pixr:g}: times moved by {shift * 86400:.3f} s to mid-cadence")
    system = TimeSystem(
        offset=offset, scale=scale, reference=reference, label=label, notes=tuple(notes), shift_days=shift
    )
    if not system.is_bjd_tdb:
        log.warning("%s: times are %s, not BJD_TDB", path or "file", system.description)
    for note in notes:
        log.info("%s: %s", path or "file", note)
    return system
