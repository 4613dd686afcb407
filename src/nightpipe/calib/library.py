"""The library of master frames: readable file names, database rows and matching to frames.

A master is a FITS file under ``paths.masters`` with a name that says what it is
(``dark_1x1_g1.0_30s_-10C_20171220.fits``) and a row of :class:`nightpipe.store.models.Master`
with its matching keys (binning, raw size, gain, gain setting, offset, readout mode, filter, exposure,
temperature, time), its provenance (input files, inputs and settings hashes, software
version) and quality figures.

:func:`find_master` picks the master to calibrate a frame with: same binning, raw size, gain,
CMOS gain setting, offset and readout mode; the same filter for flats; for darks the same exposure (relative
``exposure_tolerance``), or, when ``dark_scaling`` is on and no such dark exists, a
bias-subtracted dark to be scaled; temperature within ``temperature_tolerance``; not older (or
newer) than ``max_master_age_days``; then the nearest in time, earlier masters first on ties.
A night without its own calibration frames thereby uses the newest valid masters of earlier
nights.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.store.models import Frame, Master

log = logging.getLogger(__name__)

KINDS = ("bias", "dark", "flat", "badpix")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def _fmt_gain(value: float) -> str:
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def master_filename(
    kind: str,
    *,
    xbin: int | None,
    ybin: int | None,
    gain: float | None,
    obs_time: datetime | None,
    filter: str | None = None,
    exptime: float | None = None,
    ccd_temp: float | None = None,
    readout_mode: str | None = None,
    gain_setting: float | None = None,
) -> str:
    """A readable file name for a master: kind, binning, gain (``gs`` the CMOS gain setting),
    readout mode, filter, exposure, temperature, date.

    Examples
    --------
    >>> from datetime import datetime
    >>> master_filename("dark", xbin=1, ybin=1, gain=1.0, obs_time=datetime(2017, 12, 20),
    ...                 exptime=30.0, ccd_temp=-10.04)
    'dark_1x1_g1.0_30s_-10C_20171220.fits'
    >>> master_filename("flat", xbin=2, ybin=2, gain=None, obs_time=None, filter="Sloan r'")
    'flat_2x2_Sloan-r_nodate.fits'
    """
    parts = [kind, f"{xbin or 1}x{ybin or 1}"]
    if gain is not None:
        parts.append(f"g{_fmt_gain(gain)}")
    if gain_setting is not None:
        parts.append(f"gs{gain_setting:g}")
    if readout_mode:
        parts.append(_UNSAFE.sub("-", readout_mode).strip("-"))
    if kind == "flat" and filter:
        parts.append(_UNSAFE.sub("-", filter).strip("-") or "nofilter")
    if kind == "dark" and exptime is not None:
        parts.append(f"{exptime:g}s")
    if ccd_temp is not None and kind in ("dark", "badpix"):
        parts.append(f"{round(ccd_temp):d}C")
    parts.append(obs_time.strftime("%Y%m%d") if obs_time is not None else "nodate")
    return "_".join(parts) + ".fits"


def as_utc(value: datetime | None) -> datetime | None:
    """A datetime as timezone-aware UTC (SQLite gives naive datetimes back)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class MasterKeys:
    """The keys a master is matched on, taken from its input frames."""

    kind: str
    xbin: int | None
    ybin: int | None
    naxis1: int | None
    naxis2: int | None
    gain: float | None
    offset: float | None
    readout_mode: str | None
    filter: str | None = None
    exptime: float | None = None
    ccd_temp: float | None = None
    obs_time: datetime | None = None
    gain_setting: float | None = None  # the CMOS gain setting (N.I.N.A. GAIN), when the header gives one

    def filename(self) -> str:
        """The readable file name of a master with these keys."""
        return master_filename(
            self.kind,
            xbin=self.xbin,
            ybin=self.ybin,
            gain=self.gain,
            gain_setting=self.gain_setting,
            obs_time=self.obs_time,
            filter=self.filter,
            exptime=self.exptime,
            ccd_temp=self.ccd_temp,
            readout_mode=self.readout_mode,
        )


def register_master(
    session: Session,
    *,
    path: Path | str,
    keys: MasterKeys,
    nframes: int,
    inputs: Sequence[str],
    inputs_hash: str,
    settings_hash: str,
    software: str,
    quality: dict[str, Any],
    bias_included: bool = False,
) -> Master:
    """Insert or update the library row of the master at ``path`` (upsert on the path)."""
    path_text = str(Path(path))
    row = session.scalars(select(Master).where(Master.path == path_text)).first()
    if row is None:
        row = Master(path=path_text)
        session.add(row)
    row.kind = keys.kind
    row.xbin, row.ybin = keys.xbin, keys.ybin
    row.naxis1, row.naxis2 = keys.naxis1, keys.naxis2
    row.gain, row.offset, row.readout_mode = keys.gain, keys.offset, keys.readout_mode
    row.gain_setting = keys.gain_setting
    row.filter = keys.filter
    row.exptime = keys.exptime
    row.ccd_temp = keys.ccd_temp
    row.obs_time = keys.obs_time
    row.bias_included = bias_included
    row.nframes = nframes
    row.inputs = list(inputs)
    row.inputs_hash = inputs_hash
    row.settings_hash = settings_hash
    row.software = software
    row.quality = quality
    row.valid = True
    session.flush()
    return row


def existing_master(session: Session, kind: str, inputs_hash: str, settings_hash: str) -> Master | None:
    """The valid master built from the same inputs with the same settings, if any."""
    query = select(Master).where(
        Master.kind == kind,
        Master.inputs_hash == inputs_hash,
        Master.settings_hash == settings_hash,
        Master.valid.is_(True),
    )
    return session.scalars(query.order_by(Master.id.desc())).first()


def list_masters(session: Session, kind: str | None = None, *, include_invalid: bool = False) -> list[Master]:
    """Masters of the library, newest first."""
    query = select(Master)
    if kind is not None:
        query = query.where(Master.kind == kind)
    if not include_invalid:
        query = query.where(Master.valid.is_(True))
    return list(session.scalars(query.order_by(Master.obs_time.desc(), Master.id.desc())))


# --------------------------------------------------------------------------- matching


def _same_float(a: float | None, b: float | None, rel: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def _norm_filter(name: str | None) -> str:
    return (name or "").strip().lower()


def _same_exposure(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return False
    return abs(a - b) <= tolerance * max(abs(a), abs(b)) + 1e-9


@dataclass(frozen=True)
class MatchOutcome:
    """The master chosen for a frame (or ``None``) and, when none, why."""

    master: Master | None
    reason: str | None = None
    scaled: bool = False


def match_master(session: Session, frame: Frame, kind: str, settings: Settings) -> MatchOutcome:
    """Choose the master of ``kind`` for ``frame`` and say why none fits when there is none.

    See the module docstring for the rules; :func:`find_master` returns only the master.
    """
    cal = settings.calibration
    query = select(Master).where(Master.kind == kind, Master.valid.is_(True))
    for column, value in (
        (Master.xbin, frame.xbin),
        (Master.ybin, frame.ybin),
        (Master.naxis1, frame.naxis1),
        (Master.naxis2, frame.naxis2),
        (Master.readout_mode, frame.readout_mode),
    ):
        query = query.where(column.is_(None) if value is None else column == value)
    if kind == "flat":
        query = query.where(func.lower(func.coalesce(Master.filter, "")) == _norm_filter(frame.filter))
    candidates = list(session.scalars(query))
    if not candidates:
        what = f"filter {frame.filter!r}, " if kind == "flat" else ""
        return MatchOutcome(
            None,
            f"no {kind} master with {what}binning {frame.xbin}x{frame.ybin}, size "
            f"{frame.naxis1}x{frame.naxis2}, readout mode {frame.readout_mode!r}",
        )
    kept = [
        m
        for m in candidates
        if _same_float(m.gain, frame.gain)
        and _same_float(m.offset, frame.offset)
        and _same_float(m.gain_setting, frame.gain_setting)
    ]
    if not kept:
        setting = f", gain setting {frame.gain_setting:g}" if frame.gain_setting is not None else ""
        return MatchOutcome(
            None, f"no {kind} master with gain {frame.gain}{setting} and offset {frame.offset}"
        )
    if frame.ccd_temp is not None:
        kept = [
            m
            for m in kept
            if m.ccd_temp is None or abs(m.ccd_temp - frame.ccd_temp) <= cal.temperature_tolerance
        ]
        if not kept:
            return MatchOutcome(
                None,
                f"no {kind} master within {cal.temperature_tolerance} C of {frame.ccd_temp:.1f} C",
            )
    when = as_utc(frame.mid_utc)
    if when is not None:
        max_age = cal.max_master_age_days * 86400.0
        aged = [m for m in kept if m.obs_time is None or abs(_seconds(m.obs_time, when)) <= max_age]
        if not aged:
            return MatchOutcome(
                None, f"every {kind} master is more than {cal.max_master_age_days:g} days from the frame"
            )
        kept = aged
    scaled = False
    if kind == "dark" and frame.exptime is None:
        return MatchOutcome(
            None,
            "no exposure time in the header (EXPTIME and the other exposure keywords missing or "
            "unreadable), so no dark can be matched; fix EXPTIME, or set it with a "
            "[[camera.overrides]] rule",
        )
    if kind == "dark":
        exact = [m for m in kept if _same_exposure(m.exptime, frame.exptime, cal.exposure_tolerance)]
        if exact:
            kept = exact
        elif cal.dark_scaling and frame.exptime is not None:
            kept = [m for m in kept if not m.bias_included and m.exptime]
            scaled = True
            if not kept:
                return MatchOutcome(
                    None, f"no dark of {frame.exptime:g} s and no bias-subtracted dark to scale"
                )
        else:
            return MatchOutcome(None, f"no dark of {frame.exptime} s (dark scaling is off)")

    def rank(m: Master) -> tuple[float, int, float]:
        obs = as_utc(m.obs_time)
        if when is None or obs is None:
            newest = -(obs.timestamp() if obs is not None else -math.inf)
            return (newest, 0, -m.id)
        dt = _seconds(obs, when)
        return (abs(dt), 1 if dt > 0 else 0, -m.id)

    best = min(kept, key=rank)
    return MatchOutcome(best, None, scaled)


def find_master(session: Session, frame: Frame, kind: str, settings: Settings) -> Master | None:
    """The best master of ``kind`` ("bias", "dark", "flat", "badpix") for ``frame``, or ``None``.

    Matching keys: binning, raw image size, gain, CMOS gain setting, offset and readout mode always;
    the filter for flats (case-insensitive); for darks the exposure within ``exposure_tolerance``, else a
    bias-subtracted dark to scale when ``dark_scaling`` is on (compare ``master.exptime`` with
    ``frame.exptime`` to get the factor); temperature within ``temperature_tolerance`` when
    both are known; time within ``max_master_age_days``; the nearest in time wins (an earlier
    master on ties), so a night without calibration frames uses the newest earlier masters.

    Examples
    --------
    >>> with db.session() as session:  # doctest: +SKIP
    ...     bias = find_master(session, frame, "bias", settings)
    """
    outcome = match_master(session, frame, kind, settings)
    if outcome.master is None:
        log.debug("no %s master for %s: %s", kind, frame.path, outcome.reason)
    return outcome.master


def _seconds(a: datetime, b: datetime) -> float:
    """``a - b`` in seconds, both taken as UTC."""
    aa, bb = as_utc(a), as_utc(b)
    assert aa is not None and bb is not None
    return (aa - bb).total_seconds()
