"""A finished job's products, read the way the engine wrote them (its output folder and database).

Nothing here writes to the engine's folder or database: the database is opened without migrating,
and a job whose database does not exist yet (it failed before the engine started) has no products.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astropy.table import Table
from sqlalchemy import select
from sqlalchemy.engine import make_url

from nightpipe.photometry.table import read_source_table
from nightpipe.store import open_database
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_calphot import CalibratedMag
from nightpipe.store.models_photometry import PhotometryFrame
from nightpipe.store.models_timeseries import TransitFitRow

FRAME_STEPS = ("calibrate", "solve", "photometry", "zeropoint", "lightcurve")


@dataclass(frozen=True)
class StepState:
    """The outcome of one engine step on one frame, as the store's step run records it."""

    status: str
    reason: str | None


@dataclass(frozen=True)
class FrameProducts:
    """One light frame of the job: its raw file, its calibrated image and source table (when made)."""

    id: int
    file: Path
    night: str | None
    mid_utc: str | None
    calibrated: Path | None
    sources: Path | None
    n_sources: int | None
    fwhm_px: float | None
    steps: dict[str, StepState] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def image(self) -> Path | None:
        """What the viewer shows: the calibrated image, else the raw frame (a frame job without
        calibration) while it exists."""
        if self.calibrated is not None:
            return self.calibrated
        return self.file if self.sources is not None and self.file.is_file() else None


@dataclass(frozen=True)
class LightCurveProducts:
    """A target's light curve on one night: the AstroImageJ-style CSV and the fit JSON (if fitted)."""

    night: str
    target: str
    csv: Path
    fit_json: Path | None


@dataclass(frozen=True)
class JobProducts:
    output: Path
    frames: list[FrameProducts]
    lightcurves: list[LightCurveProducts]
    reports: dict[str, Path]
    zips: dict[str, Path]

    def frame(self, frame_id: int) -> FrameProducts | None:
        return next((f for f in self.frames if f.id == frame_id), None)

    def lightcurve(self, night: str | None = None, target: str | None = None) -> LightCurveProducts | None:
        return next(
            (
                lc
                for lc in self.lightcurves
                if (night is None or lc.night == night) and (target is None or lc.target == target)
            ),
            None,
        )


def _database(db_url: str) -> Database | None:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
        return None
    return open_database(db_url, upgrade=False)


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


def job_products(output: Path, db_url: str) -> JobProducts:
    """The products of the engine run that wrote ``output`` and the database at ``db_url``."""
    db = _database(db_url)
    if db is None:
        return JobProducts(output, [], [], {}, {})
    try:
        with db.session() as session:
            frames = _frames(session)
            fits = session.execute(
                select(TransitFitRow.night, TransitFitRow.target, TransitFitRow.csv_path).order_by(
                    TransitFitRow.night, TransitFitRow.target
                )
            ).all()
    finally:
        db.dispose()
    curves = []
    for night, target, csv_path in fits:
        path = _existing(csv_path)
        if path is not None:
            fit = path.with_name(f"{path.stem}_fit.json")
            curves.append(LightCurveProducts(night, target, path, fit if fit.is_file() else None))
    reports = {p.stem: p for p in sorted((output / "reports").glob("*.html"))}
    zips = {p.stem: p for p in sorted((output / "reports").glob("*.zip"))}
    return JobProducts(output, frames, curves, reports, zips)


def _frames(session: Any) -> list[FrameProducts]:
    lights = session.scalars(select(Frame).where(Frame.kind == "light").order_by(Frame.mid_utc, Frame.path))
    runs: dict[int, dict[str, StepRun]] = {}
    for run in session.scalars(select(StepRun).where(StepRun.frame_id.is_not(None))):
        runs.setdefault(run.frame_id, {})[run.step] = run
    phot = {p.frame_id: p for p in session.scalars(select(PhotometryFrame))}
    out = []
    for frame in lights:
        steps = runs.get(frame.id, {})
        cal = steps.get("calibrate")
        solved = steps.get("solve")
        calibrated = _existing(solved.output_path if solved and solved.status == "ok" else None) or _existing(
            cal.output_path if cal and cal.status == "ok" else None
        )
        p = phot.get(frame.id)
        out.append(
            FrameProducts(
                id=frame.id,
                file=Path(frame.path),
                night=frame.night,
                mid_utc=frame.mid_utc.isoformat() if frame.mid_utc else None,
                calibrated=calibrated,
                sources=_existing(p.table_path) if p else None,
                n_sources=p.n_sources if p else None,
                fwhm_px=p.fwhm_px if p else None,
                steps={name: StepState(r.status, r.reason) for name, r in steps.items()},
            )
        )
    return out


def source_table(frame: FrameProducts) -> Table | None:
    """The frame's source table (x, y 0-based pixels as the engine writes them), or None."""
    return read_source_table(frame.sources) if frame.sources is not None else None


def calibrated_mags(db_url: str, frame_id: int) -> dict[int, dict[str, Any]]:
    """The zero-point step's calibrated magnitude of each source of a frame, by source id."""
    db = _database(db_url)
    if db is None:
        return {}
    try:
        with db.session() as session:
            rows = session.scalars(select(CalibratedMag).where(CalibratedMag.frame_id == frame_id))
            return {
                r.source_id: {
                    "mag": r.mag,
                    "mag_err": r.mag_err,
                    "band": r.band,
                    "catalog_id": r.catalog_id,
                    "catalog_mag": r.catalog_mag,
                }
                for r in rows
            }
    finally:
        db.dispose()


def catalogue_stars(output: Path, frame: FrameProducts) -> list[dict[str, Any]]:
    """The reference-catalogue stars the zero-point step matched on this frame (``tables/<night>/
    sources.csv``: catalogue position RA_C, DEC_C and magnitude CMAG_<band>)."""
    if frame.night is None or frame.calibrated is None:
        return []
    path = output / "tables" / frame.night / "sources.csv"
    if not path.is_file():
        return []
    stars = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("IMGNAME") != frame.calibrated.name:
                continue
            cmag = next((v for k, v in row.items() if k.startswith("CMAG_")), None)
            try:
                ra, dec = float(row["RA_C"]), float(row["DEC_C"])
            except (KeyError, ValueError):
                continue
            if math.isfinite(ra) and math.isfinite(dec):
                stars.append({"id": row.get("id"), "ra": ra, "dec": dec, "mag": _float(cmag)})
    return stars


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
