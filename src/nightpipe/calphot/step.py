"""The zero-point step: calibrate every source table of a night against a reference catalogue."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from nightpipe.calphot.accuracy import CatalogAgreement, catalog_agreement, usable_measurements
from nightpipe.calphot.extinction import fit_extinction
from nightpipe.calphot.frame import FrameCalibration, calibrate_table
from nightpipe.calphot.plots import plot_catalog_vs_instrumental, plot_zero_point_vs_airmass
from nightpipe.calphot.transforms import filter_band
from nightpipe.catalogs.service import LocalCone, ReferenceCatalogs, tycho2_cone
from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open, product_files
from nightpipe.photometry.table import SOURCE_TABLE_SUFFIX, read_source_table
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_calphot import CalibratedMag, ZeroPoint
from nightpipe.store.steps import record_step
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


def default_catalogs(settings: Settings) -> ReferenceCatalogs:
    """The configured catalogues, with Tycho-2 read offline from the astrometry index files."""
    local: dict[str, LocalCone] = {}
    if "tycho2" in settings.catalog.order:
        cone_holder: list[LocalCone] = []

        def tycho2(ra: float, dec: float, radius: float, mag_limit: float | None) -> Table:
            if not cone_holder:
                cone_holder.append(tycho2_cone(settings.astrometry.index_dirs))
            return cone_holder[0](ra, dec, radius, mag_limit)

        local["tycho2"] = tycho2
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
class _Pending:
    """One calibrated frame waiting to be written."""

    frame: Frame
    night: str
    cal: FrameCalibration
    airmass: float | None
    stamp: str


STORE_BATCH = 32  # frames per transaction: one commit per frame was a third of the step


def _store_all(db: Database, pending: list[_Pending]) -> None:
    """Write the zero points and magnitudes of several frames in one transaction, then forget them.

    A run killed before the commit leaves none of them recorded: they are done again next time.
    """
    if pending:
        with db.session() as session:
            for item in pending:
                _store(session, item)
        pending.clear()


def _store(session: Session, item: _Pending) -> None:
    frame, night, cal, airmass, stamp = item.frame, item.night, item.cal, item.airmass, item.stamp
    table = cal.table
    session.execute(delete(ZeroPoint).where(ZeroPoint.frame_id == frame.id))
    session.execute(delete(CalibratedMag).where(CalibratedMag.frame_id == frame.id))
    session.add(
        ZeroPoint(
            frame_id=frame.id,
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
    band = cal.reference.band
    rows = [
        {"frame_id": frame.id, "band": band, **{k: v[i] for k, v in column.items()}}
        for i in range(int(good.sum()))
    ]
    if rows:
        session.execute(insert(CalibratedMag.metadata.tables[CalibratedMag.__tablename__]), rows)
    record_step(
        session,
        step=STEP,
        status="ok",
        frame_id=frame.id,
        input_hash=stamp,
        night=night,
        details={"zero_point": cal.fit.zero_point, "n_used": cal.fit.n_used},
    )


def write_sources_csv(rows: list[dict[str, object]], destination: Path, band: str) -> Path:
    """Catalogue-vs-measured table in the layout of the Guilford College pipeline's sources.csv."""
    fields = [
        "id",
        "RA_C",
        "DEC_C",
        "RA_M",
        "DEC_M",
        "DIF",
        f"MAG_{band}",
        "MAG_err",
        f"CMAG_{band}",
        "DATETIME",
        "IMGNAME",
    ]
    with atomic_open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "---") for k in fields})
    return destination


def _csv_rows(table: Table, band: str, image: str) -> list[dict[str, object]]:
    """Rows of the catalogue-vs-measured CSV from a calibrated source table."""
    when = str(table.meta.get("mid_utc", ""))
    good = np.isfinite(np.asarray(table["mag"], float))

    def col(name: str) -> list[Any]:
        return list(np.asarray(table[name])[good].tolist())

    cat_id = [str(c) for c in col("cat_id")]
    cat_ra, cat_dec, cat_sep, cat_mag = col("cat_ra"), col("cat_dec"), col("cat_sep"), col("cat_mag")
    ra, dec, mag, mag_err = col("ra"), col("dec"), col("mag"), col("mag_err")
    rows: list[dict[str, object]] = []
    for i, ident in enumerate(cat_id):
        matched = bool(ident)
        rows.append(
            {
                "id": ident if matched else "nan",
                "RA_C": float(cat_ra[i]) if matched else "nan",
                "DEC_C": float(cat_dec[i]) if matched else "nan",
                "RA_M": float(ra[i]),
                "DEC_M": float(dec[i]),
                "DIF": round(float(cat_sep[i]), 3) if matched else "nan",
                f"MAG_{band}": float(mag[i]),
                "MAG_err": float(mag_err[i]),
                f"CMAG_{band}": float(cat_mag[i]) if matched else "nan",
                "DATETIME": when,
                "IMGNAME": image,
            }
        )
    return rows


def _agreement_columns(table: Table) -> dict[str, np.ndarray]:
    """What :func:`~nightpipe.calphot.accuracy.catalog_agreement` needs from a calibrated table."""
    return {
        "cat_id": np.asarray(table["cat_id"]).astype(str),
        "cat_mag": np.asarray(table["cat_mag"], float),
        "cat_err": np.asarray(table["cat_err"], float),
        "mag": np.asarray(table["mag"], float),
        "mag_err": np.asarray(table["mag_err"], float),
        "usable": usable_measurements(
            np.asarray(table["flags"], int) if "flags" in table.colnames else np.zeros(len(table), int),
            np.nan_to_num(np.asarray(table["contam"], float), nan=np.inf),
            np.asarray(table["cat_contam"], float),
        ),
    }


def night_agreement(columns: list[dict[str, np.ndarray]], max_cat_mag: float) -> CatalogAgreement:
    """Calibrated vs catalogue magnitudes over a night, from the per-frame columns."""
    joined = {k: np.concatenate([c[k] for c in columns]) for k in columns[0]}
    return catalog_agreement(
        joined["cat_id"],
        joined["cat_mag"],
        joined["cat_err"],
        joined["mag"],
        joined["mag_err"],
        joined["usable"],
        max_cat_mag=max_cat_mag,
    )


def write_agreement_csv(agreement: CatalogAgreement, destination: Path) -> Path:
    """Per catalogue star: catalogue and night-mean calibrated magnitudes, their difference."""
    with atomic_open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(agreement.stars.colnames)
        for row in agreement.stars:
            writer.writerow(
                [row[c] if c in ("cat_id", "n_frames") else f"{float(row[c]):.4f}" for c in row.colnames]
            )
    return destination


def _stamp(path: Path, settings_digest: str) -> str:
    """What a source table looked like after this step wrote it (size, mtime) and the settings."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}:{settings_digest}"


def _unchanged(db: Database, frame: Frame | None, stamp: str) -> bool:
    if frame is None:
        return False
    with db.session() as session:
        run = session.scalars(
            select(StepRun).where(StepRun.step == STEP, StepRun.frame_id == frame.id)
        ).first()
        return run is not None and run.input_hash == stamp  # same input: same result (or same failure)


@dataclass
class _NightFrames:
    """What calibrating the frames of one night gave, for its products and the summary."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0
    band: str = "?"
    zero_points: list[float] = field(default_factory=list)
    series: list[tuple[float, float, float]] = field(default_factory=list)  # airmass, zp, zp error
    csv_rows: list[dict[str, object]] = field(default_factory=list)
    agreement_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    sample: tuple[FrameCalibration, str] | None = None


@dataclass(frozen=True)
class _NightInput:
    """The source tables of one night and what the database knows of them."""

    night: str
    paths: list[Path]
    tables: list[Table]
    frames: list[Frame | None]
    todo: list[bool]
    stamps: list[str]


def _record_failure(db: Database, frame: Frame | None, night: str, reason: str, stamp: str) -> None:
    if frame is None:
        return
    with db.session() as session:
        record_step(
            session,
            step=STEP,
            status="failed",
            frame_id=frame.id,
            night=night,
            reason=reason,
            input_hash=stamp,
        )


def _calibrate_frames(db: Database, work: _NightInput, catalog: Table, progress: Progress) -> _NightFrames:
    """Fit every frame's zero point; store those whose table changed (in batched transactions)."""
    out = _NightFrames()
    pending: list[_Pending] = []
    paths = work.paths
    progress.start(len(paths), f"zero points {work.night}")
    rows = zip(paths, work.tables, work.frames, work.todo, work.stamps, strict=True)
    for path, table, frame, todo, stamp in rows:
        progress.advance(path.name)
        try:
            wanted = filter_band(frame.filter if frame is not None else table.meta.get("filter"))
            cal = calibrate_table(
                table,
                catalog,
                wanted,
                wcs_rms_arcsec=table.meta.get("wcs_rms_arcsec"),
                pixel_scale_arcsec=float(table.meta.get("pixel_scale_arcsec") or 1.0),
            )
        except NightpipeError as exc:
            if todo:
                out.failed += 1
                log.warning("%s", exc, extra={"frame": path.name, "step": STEP})
                _record_failure(db, frame, work.night, str(exc), stamp)
            else:
                out.skipped += 1
            continue
        airmass = table.meta.get("airmass")
        at = float(airmass) if airmass is not None else None
        if todo:
            if frame is not None:
                pending.append(_Pending(frame, work.night, cal, at, stamp))
                if len(pending) >= STORE_BATCH:
                    _store_all(db, pending)
            out.processed += 1
        else:
            out.skipped += 1
        if out.sample is None or path == paths[len(paths) // 2]:
            out.sample = (cal, path.stem)
        out.band = cal.reference.band
        out.zero_points.append(cal.fit.zero_point)
        out.series.append((at if at is not None else np.nan, cal.fit.zero_point, cal.fit.zero_point_err))
        image = Path(str(table.meta.get("frame", path.stem))).name
        out.csv_rows += _csv_rows(cal.table, out.band, image)
        out.agreement_columns.append(_agreement_columns(cal.table))
    _store_all(db, pending)
    progress.stop()
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
    todo = [not _unchanged(db, known.get(p), st) for p, st in zip(paths, stamps, strict=True)]
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


@dataclass
class _NightProducts:
    sources_csv: Path | None = None
    agreement: CatalogAgreement | None = None
    agreement_csv: Path | None = None
    k: float | None = None
    k_err: float | None = None


def _night_products(
    output: Path, night: str, done: _NightFrames, catalog_name: str, agreement_max_mag: float
) -> _NightProducts:
    """The night's plots, sources.csv, catalogue agreement and extinction fit."""
    out = _NightProducts()
    plots = output / "plots" / night
    if done.sample is not None:
        cal, stem = done.sample
        title = f"{stem}: {catalog_name} {cal.reference.band}"
        plot_catalog_vs_instrumental(cal, plots / "zeropoint_fit.png", title=title)
    if done.csv_rows:
        out.sources_csv = write_sources_csv(
            done.csv_rows, output / "tables" / night / "sources.csv", done.band
        )
    if done.agreement_columns:
        out.agreement = night_agreement(done.agreement_columns, agreement_max_mag)
        log.info("night %s, %s %s: %s", night, catalog_name, done.band, out.agreement.summary())
        out.agreement_csv = write_agreement_csv(
            out.agreement, output / "tables" / night / "catalog_agreement.csv"
        )
    if done.series:
        x, zp, err = (np.array(c) for c in zip(*done.series, strict=True))
        zp0 = None
        try:
            ext = fit_extinction(zp, err, x)
            out.k, out.k_err, zp0 = ext.k, ext.k_err, ext.zp0
        except NightpipeError as exc:
            log.info("extinction not fitted: %s", exc)
        plot_zero_point_vs_airmass(
            x,
            zp,
            err,
            plots / "zeropoint_airmass.png",
            k=out.k,
            zp0=zp0,
            title=f"zero point over the night {night}",
        )
    return out


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
    last = _NightProducts()
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
        products = _night_products(output, this_night, done, catalog_name, agreement_max_mag)
        last = _NightProducts(
            products.sources_csv or last.sources_csv,
            products.agreement or last.agreement,
            products.agreement_csv or last.agreement_csv,
            products.k if products.k is not None else last.k,
            products.k_err if products.k is not None else last.k_err,
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
        sources_csv=str(last.sources_csv) if last.sources_csv else None,
        agreement_n_stars=agreement.n_stars if agreement else None,
        agreement_rms=finite_or_none(agreement.rms) if agreement else None,
        agreement_robust_rms=finite_or_none(agreement.robust_rms) if agreement else None,
        agreement_median=finite_or_none(agreement.median_offset) if agreement else None,
        agreement_expected_rms=finite_or_none(agreement.expected_rms) if agreement else None,
        agreement_csv=str(last.agreement_csv) if last.agreement_csv else None,
    )
