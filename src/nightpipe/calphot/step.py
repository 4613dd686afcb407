"""The zero-point step: calibrate every source table of a night against a reference catalogue."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from sqlalchemy import delete, select

from nightpipe.calphot.extinction import fit_extinction
from nightpipe.calphot.frame import FrameCalibration, calibrate_table
from nightpipe.calphot.plots import plot_catalog_vs_instrumental, plot_zero_point_vs_airmass
from nightpipe.calphot.transforms import filter_band
from nightpipe.catalogs.service import LocalCone, ReferenceCatalogs, tycho2_cone
from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open, atomic_path
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_calphot import CalibratedMag, ZeroPoint
from nightpipe.store.steps import record_step

log = logging.getLogger(__name__)
STEP = "zeropoint"


@dataclass(frozen=True)
class ZeroPointSummary:
    """What the zero-point step did."""

    processed: int
    failed: int
    catalog: str | None
    zero_point_median: float | None
    zero_point_std: float | None
    extinction_k: float | None
    extinction_k_err: float | None
    sources_csv: str | None


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
    return {n: sorted((root / n).glob("*.ecsv")) for n in nights if (root / n).is_dir()}


def _field(tables: list[Table]) -> tuple[float, float, float]:
    """Centre (deg) and radius (deg) covering every source of the night, with a margin."""
    ra = np.concatenate([np.asarray(t["ra"], float) for t in tables])
    dec = np.concatenate([np.asarray(t["dec"], float) for t in tables])
    ok = np.isfinite(ra) & np.isfinite(dec)
    coords = SkyCoord(ra[ok] * u.deg, dec[ok] * u.deg)
    centre = SkyCoord(coords.cartesian.mean())
    radius = float(centre.separation(coords).max().to_value(u.deg)) * 1.05 + 0.01
    return float(centre.ra.deg), float(centre.dec.deg), radius


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


def _store(db: Database, frame: Frame, night: str, cal: FrameCalibration, airmass: float | None) -> None:
    table = cal.table
    with db.session() as session:
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
        ids = np.asarray(table["id"]) if "id" in table.colnames else np.arange(len(table))
        rows = []
        for i in np.flatnonzero(np.isfinite(np.asarray(table["mag"], float))):
            cat_mag = float(table["cat_mag"][i])
            rows.append(
                CalibratedMag(
                    frame_id=frame.id,
                    source_id=int(ids[i]),
                    ra=_f(table["ra"][i]),
                    dec=_f(table["dec"][i]),
                    mag=float(table["mag"][i]),
                    mag_err=float(table["mag_err"][i]),
                    band=cal.reference.band,
                    catalog_id=str(table["cat_id"][i]) or None,
                    catalog_mag=cat_mag if np.isfinite(cat_mag) else None,
                )
            )
        session.add_all(rows)
        record_step(
            session,
            step=STEP,
            status="ok",
            frame_id=frame.id,
            night=night,
            details={"zero_point": cal.fit.zero_point, "n_used": cal.fit.n_used},
        )


def _f(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else None


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


def _csv_rows(
    cal: FrameCalibration, catalog: Table, band: str, when: str, image: str
) -> list[dict[str, object]]:
    t = cal.table
    rows: list[dict[str, object]] = []
    matched = dict(zip(cal.match.source_index.tolist(), cal.match.ref_index.tolist(), strict=True))
    seps = dict(zip(cal.match.source_index.tolist(), cal.match.separation_arcsec.tolist(), strict=True))
    for i in range(len(t)):
        if not np.isfinite(float(t["mag"][i])):
            continue
        j = matched.get(i)
        rows.append(
            {
                "id": str(catalog["id"][j]) if j is not None else "nan",
                "RA_C": float(catalog["ra"][j]) if j is not None else "nan",
                "DEC_C": float(catalog["dec"][j]) if j is not None else "nan",
                "RA_M": float(t["ra"][i]),
                "DEC_M": float(t["dec"][i]),
                "DIF": round(seps[i], 3) if j is not None else "nan",
                f"MAG_{band}": float(t["mag"][i]),
                "MAG_err": float(t["mag_err"][i]),
                f"CMAG_{band}": float(cal.reference.mag[j]) if j is not None else "nan",
                "DATETIME": when,
                "IMGNAME": image,
            }
        )
    return rows


def run_zeropoints(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    catalogs: ReferenceCatalogs | None = None,
    progress: Progress | None = None,
) -> ZeroPointSummary:
    """Fit a zero point per source table of the night(s), store calibrated magnitudes, plot, export.

    A frame that cannot be calibrated (no WCS, too few matches) is recorded as failed
    with the reason; a night whose catalogue cannot be obtained is a CatalogError.
    """
    progress = progress or NullProgress()
    catalogs = catalogs or default_catalogs(settings)
    output = settings.paths.output
    processed = failed = 0
    zps: list[float] = []
    k = k_err = None
    csv_path: Path | None = None
    catalog_name: str | None = None
    for this_night, paths in _night_tables(output, night).items():
        tables = [Table.read(p, format="ascii.ecsv") for p in paths]
        solved = [t for t in tables if "ra" in t.colnames and np.isfinite(np.asarray(t["ra"], float)).any()]
        if not solved:
            log.warning("night %s: no source table has sky coordinates; zero points skipped", this_night)
            continue
        ra0, dec0, radius = _field(solved)
        jds = [float(t.meta["jd_utc"]) for t in solved if t.meta.get("jd_utc")]
        epoch = float(Time(np.median(jds), format="jd").jyear) if jds else None
        catalog = catalogs.cone(ra0, dec0, radius, epoch=epoch)
        catalog_name = str(catalog.meta.get("catalog"))
        night_rows: list[dict[str, object]] = []
        series: list[tuple[float, float, float]] = []
        sample: tuple[FrameCalibration, str] | None = None
        progress.start(len(paths), f"zero points {this_night}")
        for path, table in zip(paths, tables, strict=True):
            frame = _frame_for(db, table, path)
            try:
                band = filter_band(frame.filter if frame is not None else table.meta.get("filter"))
                cal = calibrate_table(
                    table,
                    catalog,
                    band,
                    wcs_rms_arcsec=table.meta.get("wcs_rms_arcsec"),
                    pixel_scale_arcsec=float(table.meta.get("pixel_scale_arcsec") or 1.0),
                )
            except NightpipeError as exc:
                failed += 1
                log.warning("%s", exc, extra={"frame": path.name, "step": STEP})
                if frame is not None:
                    with db.session() as session:
                        record_step(
                            session,
                            step=STEP,
                            status="failed",
                            frame_id=frame.id,
                            night=this_night,
                            reason=str(exc),
                        )
                progress.advance(path.name)
                continue
            with atomic_path(path, suffix=".ecsv") as tmp:
                cal.table.write(tmp, format="ascii.ecsv", overwrite=True)
            airmass = table.meta.get("airmass")
            if frame is not None:
                _store(db, frame, this_night, cal, float(airmass) if airmass is not None else None)
            zps.append(cal.fit.zero_point)
            series.append(
                (
                    float(airmass) if airmass is not None else np.nan,
                    cal.fit.zero_point,
                    cal.fit.zero_point_err,
                )
            )
            night_rows += _csv_rows(
                cal,
                catalog,
                cal.reference.band,
                str(table.meta.get("mid_utc", "")),
                Path(str(table.meta.get("frame", path.stem))).name,
            )
            if sample is None or len(series) == len(paths) // 2:
                sample = (cal, path.stem)
            processed += 1
            progress.advance(path.name)
        progress.stop()
        plots = output / "plots" / this_night
        if sample is not None:
            plot_catalog_vs_instrumental(
                sample[0],
                plots / "zeropoint_fit.png",
                title=f"{sample[1]}: {catalog_name} {sample[0].reference.band}",
            )
            csv_path = write_sources_csv(
                night_rows, output / "tables" / this_night / "sources.csv", sample[0].reference.band
            )
        if series:
            x, zp, err = (np.array(c) for c in zip(*series, strict=True))
            zp0 = None
            try:
                ext = fit_extinction(zp, err, x)
                k, k_err, zp0 = ext.k, ext.k_err, ext.zp0
            except NightpipeError as exc:
                log.info("extinction not fitted: %s", exc)
            plot_zero_point_vs_airmass(
                x,
                zp,
                err,
                plots / "zeropoint_airmass.png",
                k=k,
                zp0=zp0,
                title=f"zero point over the night {this_night}",
            )
    return ZeroPointSummary(
        processed=processed,
        failed=failed,
        catalog=catalog_name,
        zero_point_median=float(np.median(zps)) if zps else None,
        zero_point_std=float(np.std(zps)) if zps else None,
        extinction_k=k,
        extinction_k_err=k_err,
        sources_csv=str(csv_path) if csv_path else None,
    )
