"""A star's light curve across every night in the database (``nightpipe lc STAR``).

A star is given by name (a configured target), by catalogue id (as matched by the
zero-point step) or by coordinates ("RA DEC" in degrees or sexagesimal). Its calibrated
magnitudes are gathered from every frame of every night, filtered by date, band and
quality, plotted and exported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from sqlalchemy import select

from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.store.db import Database
from nightpipe.store.models import Frame
from nightpipe.store.models_calphot import CalibratedMag


class StarNotFoundError(NightpipeError):
    """The star cannot be resolved or has no measurement."""


@dataclass(frozen=True)
class StarQuery:
    """Which star, and which of its measurements."""

    ra: float
    dec: float
    label: str
    radius_arcsec: float = 3.0
    since: date | None = None
    until: date | None = None
    band: str | None = None
    max_err: float | None = None


@dataclass(frozen=True)
class StarLightCurve:
    """Measurements of one star: times (JD UTC and BJD TDB), magnitudes, errors, nights, bands, frames."""

    query: StarQuery
    jd_utc: np.ndarray
    bjd_tdb: np.ndarray
    mag: np.ndarray
    mag_err: np.ndarray
    night: np.ndarray
    band: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return int(self.mag.size)


def resolve_star(text: str, settings: Settings, db: Database) -> tuple[float, float, str]:
    """Coordinates of a star given as a target name, a catalogue id or coordinates."""
    for target in settings.timeseries.targets:
        if target.name.lower().replace(" ", "") == text.lower().replace(" ", "") and target.ra is not None:
            return float(target.ra), float(target.dec or 0.0), target.name
    with db.session() as session:
        row = session.execute(
            select(CalibratedMag.ra, CalibratedMag.dec).where(CalibratedMag.catalog_id == text).limit(1)
        ).first()
    if row is not None and row[0] is not None and row[1] is not None:
        return float(row[0]), float(row[1]), text
    try:
        parts = text.replace(",", " ").split()
        if len(parts) == 2:
            try:
                coord = SkyCoord(float(parts[0]) * u.deg, float(parts[1]) * u.deg)
            except ValueError:
                coord = SkyCoord(parts[0], parts[1], unit=(u.hourangle, u.deg))
        else:
            coord = SkyCoord(text, unit=(u.hourangle, u.deg))
    except (ValueError, TypeError) as exc:
        raise StarNotFoundError(
            f"cannot resolve star {text!r}: not a configured target, "
            "a catalogue id in the database, or coordinates",
            hint="give 'RA DEC' in degrees or as 02:04:10.3 +46:41:16, or add the target to the config",
        ) from exc
    return float(coord.ra.deg), float(coord.dec.deg), text


def star_lightcurve(db: Database, query: StarQuery) -> StarLightCurve:
    """Every calibrated magnitude of the star across all nights, sorted in time."""
    half = query.radius_arcsec / 3600.0
    cosd = max(np.cos(np.radians(query.dec)), 1e-3)
    with db.session() as session:
        stmt = (
            select(CalibratedMag, Frame)
            .join(Frame, CalibratedMag.frame_id == Frame.id)
            .where(CalibratedMag.dec.between(query.dec - half, query.dec + half))
            .where(CalibratedMag.ra.between(query.ra - half / cosd, query.ra + half / cosd))
        )
        if query.band:
            stmt = stmt.where(CalibratedMag.band == query.band)
        if query.max_err is not None:
            stmt = stmt.where(CalibratedMag.mag_err <= query.max_err)
        if query.since:
            stmt = stmt.where(Frame.night >= query.since.isoformat())
        if query.until:
            stmt = stmt.where(Frame.night <= query.until.isoformat())
        rows = session.execute(stmt).all()
    target = SkyCoord(query.ra * u.deg, query.dec * u.deg)
    keep: dict[int, tuple[float, CalibratedMag, Frame]] = {}
    for mag, frame in rows:
        sep = target.separation(SkyCoord(mag.ra * u.deg, mag.dec * u.deg)).to_value(u.arcsec)
        if sep <= query.radius_arcsec and (frame.id not in keep or sep < keep[frame.id][0]):
            keep[frame.id] = (sep, mag, frame)
    if not keep:
        raise StarNotFoundError(
            f'no measurement of {query.label} within {query.radius_arcsec}" of '
            f"{query.ra:.5f} {query.dec:+.5f} with these filters",
            hint="check the coordinates, widen --radius, or run the zero-point step on its nights",
        )
    chosen = sorted(keep.values(), key=lambda item: item[2].jd_utc or 0.0)
    return StarLightCurve(
        query=query,
        jd_utc=np.array([f.jd_utc if f.jd_utc is not None else np.nan for _, _, f in chosen]),
        bjd_tdb=np.array([f.bjd_tdb if f.bjd_tdb is not None else np.nan for _, _, f in chosen]),
        mag=np.array([m.mag for _, m, _ in chosen]),
        mag_err=np.array([m.mag_err for _, m, _ in chosen]),
        night=np.array([f.night or "" for _, _, f in chosen]),
        band=np.array([m.band for _, m, _ in chosen]),
        frame=np.array([Path(f.path).name for _, _, f in chosen]),
    )


def export_csv(lc: StarLightCurve, destination: Path) -> Path:
    """The light curve as CSV (one row per frame)."""
    with atomic_open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["JD_UTC", "BJD_TDB", "mag", "mag_err", "band", "night", "frame"])
        for row in zip(lc.jd_utc, lc.bjd_tdb, lc.mag, lc.mag_err, lc.band, lc.night, lc.frame, strict=True):
            writer.writerow([f"{row[0]:.6f}", f"{row[1]:.6f}", f"{row[2]:.4f}", f"{row[3]:.4f}", *row[4:]])
    return destination


def plot(lc: StarLightCurve, destination: Path) -> Path:
    """Magnitude against time, one colour per night, brighter up."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    t0 = float(np.floor(np.nanmin(lc.jd_utc)))
    for night in np.unique(lc.night):
        sel = lc.night == night
        ax.errorbar(
            lc.jd_utc[sel] - t0, lc.mag[sel], yerr=lc.mag_err[sel], fmt="o", ms=3, lw=0.7, label=night
        )
    ax.invert_yaxis()
    ax.set_xlabel(f"JD - {t0:.0f} (UTC)")
    ax.set_ylabel(f"magnitude ({', '.join(np.unique(lc.band))})")
    ax.set_title(f"{lc.query.label} ({lc.query.ra:.5f} {lc.query.dec:+.5f}): {len(lc)} measurements")
    if np.unique(lc.night).size <= 12:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    with atomic_path(destination, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return destination
