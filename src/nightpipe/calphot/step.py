"""The zero-point step: calibrate every source table of a night against a reference catalogue.

Per night: one catalogue cone covering every solved table; then each frame's fit is a
:class:`ZeroPointStep` run through :func:`~nightpipe.pipeline.framestep.run_frame_step` (stored
when its table changed); then the night's products from every frame's fit
(:mod:`nightpipe.calphot.night_products`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nightpipe.calphot.frame import calibrate_table
from nightpipe.calphot.night_products import (
    Calibrated,
    NightFrames,
    NightProducts,
    add_frame,
    write_night_products,
)
from nightpipe.calphot.transforms import filter_band
from nightpipe.catalogs.service import LocalCone, ReferenceCatalogs, tycho2_cone
from nightpipe.config import ParallelConfig, Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import product_files
from nightpipe.photometry.table import SOURCE_TABLE_SUFFIX, read_source_table
from nightpipe.pipeline.framestep import FrameTask, StepRecord, previous_runs, run_frame_step
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_calphot import CalibratedMag, ZeroPoint
from nightpipe.store.values import finite_list, finite_or_none

log = logging.getLogger(__name__)
STEP = "zeropoint"


@dataclass(frozen=True)
class ZeroPointSummary:
    """What the zero-point step did."""

    processed: int
    failed: int
    skipped: int
    catalog: str | None
    zero_point_median: float | None
    zero_point_std: float | None
    extinction_k: float | None
    extinction_k_err: float | None
    sources_csv: str | None
    agreement_n_stars: int | None = None
    agreement_rms: float | None = None
    agreement_robust_rms: float | None = None
    agreement_median: float | None = None
    agreement_expected_rms: float | None = None
    agreement_csv: str | None = None
    second_order_k: float | None = None  # k'' (mag per airmass per mag of colour), with a colour term
    second_order_k_err: float | None = None


def default_catalogs(settings: Settings) -> ReferenceCatalogs:
    """The configured catalogues: Tycho-2 read offline from the astrometry index files, Gaia DR3
    from the identify step's answers when one covers the field (then VizieR)."""
    local: dict[str, LocalCone] = {}
    if "tycho2" in settings.catalog.order:
        cone_holder: list[LocalCone] = []

        def tycho2(ra: float, dec: float, radius: float, mag_limit: float | None) -> Table:
            if not cone_holder:
                cone_holder.append(tycho2_cone(settings.astrometry.index_dirs))
            return cone_holder[0](ra, dec, radius, mag_limit)

        local["tycho2"] = tycho2
    if "gaia" in settings.catalog.order:
        from nightpipe.identify.gaia_reference import identify_gaia_cone

        local["gaia"] = identify_gaia_cone(settings)
    return ReferenceCatalogs(settings.catalog, settings.paths.cache, local=local)


def _night_tables(output: Path, night: str | None) -> dict[str, list[Path]]:
    root = output / "sources"
    nights = (
        [night] if night else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    )
    return {n: product_files(root / n, f"*{SOURCE_TABLE_SUFFIX}") for n in nights if (root / n).is_dir()}


def _field(tables: list[Table]) -> tuple[float, float, float]:
    """Centre (deg) and radius (deg) covering every source of the night, with a margin."""
    ra = np.concatenate([np.asarray(t["ra"], float) for t in tables])
    dec = np.concatenate([np.asarray(t["dec"], float) for t in tables])
    ok = np.isfinite(ra) & np.isfinite(dec)
    coords = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg)
    centre = SkyCoord(coords.cartesian.mean())
    radius = float(centre.separation(coords).max().to_value(u.deg)) * 1.05 + 0.01
    return float(centre.ra.deg), float(centre.dec.deg), radius


def _frames_by_table(db: Database, paths: list[Path]) -> dict[Path, Frame]:
    """The inventory rows of source tables, from the photometry step's records."""
    from nightpipe.store.models_photometry import PhotometryFrame

    wanted = {str(p): p for p in paths}
    with db.session() as session:
        rows = session.execute(
            select(PhotometryFrame.table_path, Frame).join(Frame, PhotometryFrame.frame_id == Frame.id)
        ).all()
    return {wanted[path]: frame for path, frame in rows if path in wanted}


def _frame_for(session_db: Database, table: Table, path: Path) -> Frame | None:
    """The inventory row a source table belongs to (meta frame_id, or the frame/calibrated path)."""
    with session_db.session() as session:
        frame_id = table.meta.get("frame_id")
        if frame_id is not None:
            return session.get(Frame, int(frame_id))
        name = table.meta.get("frame") or table.meta.get("calibrated") or ""
        run = session.scalars(
            select(StepRun).where(StepRun.step == "calibrate", StepRun.output_path == str(name))
        ).first()
        if run is not None and run.frame_id is not None:
            return session.get(Frame, run.frame_id)
        return session.scalars(select(Frame).where(Frame.path == str(name))).first()


@dataclass(frozen=True)
class _TableJob:
    """One source table to calibrate, and the filter its frame was taken in."""

    table: Table
    filter: str | None


class ZeroPointStep:
    """The per-frame step (:class:`~nightpipe.pipeline.framestep.FrameStep`) of one night's zero
    points: fit a table against the night's catalogue; store its zero point and magnitudes."""

    name = STEP
    store_batch = 32  # frames per transaction: one commit per frame was a third of the step
    retry_failed = False  # same table, same catalogue: the same failure

    def __init__(self, catalog: Table) -> None:
        self.catalog = catalog

    def process(self, job: _TableJob) -> Calibrated:
        """Fit the zero point of one table (no database)."""
        table = job.table
        cal = calibrate_table(
            table,
            self.catalog,
            filter_band(job.filter),
            wcs_rms_arcsec=table.meta.get("wcs_rms_arcsec"),
            pixel_scale_arcsec=float(table.meta.get("pixel_scale_arcsec") or 1.0),
        )
        airmass = table.meta.get("airmass")
        return Calibrated(cal, float(airmass) if airmass is not None else None)

    def store(self, session: Session, task: FrameTask[_TableJob], result: Calibrated) -> StepRecord:
        """The frame's ``zero_points`` row and ``calibrated_mags`` rows."""
        _store_rows(session, task.frame_id, str(task.night), result)
        return StepRecord(details={"zero_point": result.cal.fit.zero_point, "n_used": result.cal.fit.n_used})


def _store_rows(session: Session, frame_id: int, night: str, result: Calibrated) -> None:
    cal, airmass = result.cal, result.airmass
    table = cal.table
    session.execute(delete(ZeroPoint).where(ZeroPoint.frame_id == frame_id))
    session.execute(delete(CalibratedMag).where(CalibratedMag.frame_id == frame_id))
    session.add(
        ZeroPoint(
            frame_id=frame_id,
            night=night,
            catalog=str(table.meta["zero_point_catalog"]),
            band=cal.reference.band,
            band_source=cal.reference.source,
            aperture_px=cal.aperture_px,
            zero_point=cal.fit.zero_point,
            zero_point_err=cal.fit.zero_point_err,
            colour_term=cal.fit.colour_term,
            extra_scatter=cal.fit.extra_scatter,
            rms=cal.fit.rms,
            n_used=cal.fit.n_used,
            n_rejected=cal.fit.n_rejected,
            airmass=airmass,
            settings={"sigma": 3.0},
        )
    )
    good = np.isfinite(np.asarray(table["mag"], float))
    ids = np.asarray(table["id"]) if "id" in table.colnames else np.arange(len(table))
    column = {  # plain Python lists of the good rows: no per-element astropy indexing
        "source_id": ids[good].astype(int).tolist(),
        "ra": finite_list(np.asarray(table["ra"], float)[good]),
        "dec": finite_list(np.asarray(table["dec"], float)[good]),
        "mag": np.asarray(table["mag"], float)[good].tolist(),
        "mag_err": np.asarray(table["mag_err"], float)[good].tolist(),
        "catalog_id": [c or None for c in np.asarray(table["cat_id"]).astype(str)[good].tolist()],
        "catalog_mag": finite_list(np.asarray(table["cat_mag"], float)[good]),
    }
    n = int(good.sum())
    if n:
        rows = list(zip([frame_id] * n, [cal.reference.band] * n, *column.values(), strict=True))
        _insert_driver_rows(session, CalibratedMag.__tablename__, ["frame_id", "band", *column], rows)


def _insert_driver_rows(
    session: Session, table: str, columns: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """One driver-level executemany (SQLAlchemy's per-row parameter processing of a core insert
    cost more than SQLite's own work: 153,000 rows a night, issue 22); the table and column names
    are the model's, never input."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    connection.exec_driver_sql(sql, rows)


def _stamp(path: Path, settings_digest: str) -> str:
    """What a source table looked like after this step wrote it (size, mtime) and the settings."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}:{settings_digest}"


@dataclass(frozen=True)
class _NightInput:
    """The source tables of one night and what the database knows of them."""

    night: str
    paths: list[Path]
    tables: list[Table]
    frames: list[Frame | None]
    todo: list[bool]
    stamps: list[str]


def _calibrate_frames(db: Database, work: _NightInput, catalog: Table, progress: Progress) -> NightFrames:
    """Fit every frame's zero point; store those whose table changed (in batched transactions).

    Unchanged frames are fitted again without being stored: the night's products (CSV,
    catalogue agreement, extinction) are made of every frame. Tables without an inventory row
    are fitted for the products and never stored.
    """
    step = ZeroPointStep(catalog)
    tasks: list[FrameTask[_TableJob]] = []
    orphans: list[int] = []
    position: dict[int, int] = {}
    for i, (path, table, frame, stamp) in enumerate(
        zip(work.paths, work.tables, work.frames, work.stamps, strict=True)
    ):
        if frame is None:
            orphans.append(i)
            continue
        position[frame.id] = i
        tasks.append(FrameTask(frame.id, work.night, stamp, _TableJob(table, frame.filter), str(path)))
    results: dict[int, Calibrated] = {}
    tally = run_frame_step(
        step,
        tasks,
        db,
        ParallelConfig(threads=1),
        progress=progress,
        on_done=lambda task, result: results.__setitem__(position[task.frame_id], result),
    )
    out = NightFrames(processed=tally.ok, failed=tally.failed, skipped=len(tally.skipped))
    for task in tally.skipped:  # the same input as last time: fitted for the night's products only
        with contextlib.suppress(NightpipeError):  # it failed last time, and does again
            results[position[task.frame_id]] = step.process(task.item)
    for i in orphans:
        table = work.tables[i]
        try:
            results[i] = step.process(_TableJob(table, table.meta.get("filter")))
            out.processed += 1
        except NightpipeError as exc:
            out.failed += 1
            log.warning("%s", exc, extra={"frame": work.paths[i].name, "step": STEP})
    for i, path in enumerate(work.paths):
        if i in results:
            add_frame(out, results[i], path, work.tables[i], middle=path == work.paths[len(work.paths) // 2])
    return out


def _night_input(
    db: Database, night: str, paths: list[Path], digest: str, output: Path
) -> _NightInput | None:
    """The night's tables and frames, or ``None`` when every table is already calibrated."""
    known = _frames_by_table(db, paths)
    for path in paths:  # tables written outside the photometry step: their metadata names the frame
        if path not in known:
            frame = _frame_for(db, read_source_table(path), path)
            if frame is not None:
                known[path] = frame
    stamps = [_stamp(p, digest) for p in paths]
    previous = previous_runs(db, STEP, failed_too=True)  # same input: same result (or same failure)
    todo = [
        (frame := known.get(p)) is None or previous.get(frame.id, ("", None))[1] != st
        for p, st in zip(paths, stamps, strict=True)
    ]
    if not any(todo) and (output / "tables" / night / "sources.csv").is_file():
        log.info("night %s: every source table already calibrated", night)
        return None
    tables = [read_source_table(p) for p in paths]
    frames = [known.get(p) or _frame_for(db, t, p) for p, t in zip(paths, tables, strict=True)]
    return _NightInput(night, paths, tables, frames, todo, stamps)


def _night_catalog(catalogs: ReferenceCatalogs, tables: list[Table]) -> Table | None:
    """The reference stars covering every solved table of the night, at the night's epoch."""
    solved = [t for t in tables if "ra" in t.colnames and np.isfinite(np.asarray(t["ra"], float)).any()]
    if not solved:
        return None
    ra0, dec0, radius = _field(solved)
    jds = [float(t.meta["jd_utc"]) for t in solved if t.meta.get("jd_utc")]
    epoch = float(Time(np.median(jds), format="jd").jyear) if jds else None
    return catalogs.cone(ra0, dec0, radius, epoch=epoch)


def run_zeropoints(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    catalogs: ReferenceCatalogs | None = None,
    progress: Progress | None = None,
    agreement_max_mag: float = 11.0,
) -> ZeroPointSummary:
    """Fit a zero point per source table of the night(s), store calibrated magnitudes, plot, export.

    The night-averaged calibrated magnitudes of the usable catalogue stars brighter than
    ``agreement_max_mag`` are compared with the catalogue
    (:func:`~nightpipe.calphot.accuracy.catalog_agreement`): the figures go into the summary
    and the log, the per-star table into ``tables/<night>/catalog_agreement.csv``.

    A frame that cannot be calibrated (no WCS, too few matches) is recorded as failed
    with the reason; a night whose catalogue cannot be obtained is a CatalogError.
    """
    progress = progress or NullProgress()
    catalogs = catalogs or default_catalogs(settings)
    output = settings.paths.output
    digest = settings.digest("catalog", "photometry")
    processed = failed = skipped = 0
    zps: list[float] = []
    catalog_name: str | None = None
    last = NightProducts()
    for this_night, paths in _night_tables(output, night).items():
        work = _night_input(db, this_night, paths, digest, output)
        if work is None:
            skipped += len(paths)
            continue
        catalog = _night_catalog(catalogs, work.tables)
        if catalog is None:
            log.warning("night %s: no source table has sky coordinates; zero points skipped", this_night)
            continue
        catalog_name = str(catalog.meta.get("catalog"))
        done = _calibrate_frames(db, work, catalog, progress)
        processed, failed, skipped = processed + done.processed, failed + done.failed, skipped + done.skipped
        zps += done.zero_points
        products = write_night_products(output, this_night, done, catalog_name, agreement_max_mag)
        last = NightProducts(
            products.sources_csv or last.sources_csv,
            products.agreement or last.agreement,
            products.agreement_csv or last.agreement_csv,
            products.k if products.k is not None else last.k,
            products.k_err if products.k is not None else last.k_err,
            products.k2 if products.k2 is not None else last.k2,
            products.k2_err if products.k2 is not None else last.k2_err,
        )
    agreement = last.agreement
    return ZeroPointSummary(
        processed=processed,
        failed=failed,
        skipped=skipped,
        catalog=catalog_name,
        zero_point_median=float(np.median(zps)) if zps else None,
        zero_point_std=float(np.std(zps)) if zps else None,
        extinction_k=last.k,
        extinction_k_err=last.k_err,
        second_order_k=last.k2,
        second_order_k_err=last.k2_err,
        sources_csv=str(last.sources_csv) if last.sources_csv else None,
        agreement_n_stars=agreement.n_stars if agreement else None,
        agreement_rms=finite_or_none(agreement.rms) if agreement else None,
        agreement_robust_rms=finite_or_none(agreement.robust_rms) if agreement else None,
        agreement_median=finite_or_none(agreement.median_offset) if agreement else None,
        agreement_expected_rms=finite_or_none(agreement.expected_rms) if agreement else None,
        agreement_csv=str(last.agreement_csv) if last.agreement_csv else None,
    )
