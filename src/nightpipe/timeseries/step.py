"""The light-curve step: from a night's source tables to each configured target's light curve and fit.

Reads ``sources/<night>/*.fits`` under ``paths.output``, builds the differential light curve of
every target of ``timeseries.targets`` that has coordinates, fits its transit when it has a
period, and writes ``lightcurves/<night>/<target>.*`` (CSV, fit JSON, AAVSO report, plots).
A table that cannot be read, or a frame dropped from a light curve, is recorded with its reason
(per frame when the frame is in the database); a target that fails is recorded and the others go on.
Each fit is also stored in the ``transit_fits`` table (one row per night and target).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightpipe.config import Settings, TargetConfig
from nightpipe.errors import NightpipeError, TimeseriesError
from nightpipe.frames.fitsio import product_files
from nightpipe.photometry.table import SOURCE_TABLE_SUFFIX, read_source_table
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, StepRun
from nightpipe.store.models_timeseries import TransitFitRow
from nightpipe.store.steps import record_step
from nightpipe.store.values import jsonable
from nightpipe.timeseries.assemble import TargetSpec, build_lightcurve
from nightpipe.timeseries.csvmode import bjd_tdb_from_jd_utc
from nightpipe.timeseries.injection import write_injection
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.products import fit_options, priors_from_target, safe_stem, write_products
from nightpipe.timeseries.transit import fit_transit

log = logging.getLogger(__name__)
STEP = "lightcurve"


@dataclass
class LightcurveSummary:
    """What the step did for each night and target."""

    nights: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    skipped: str | None = None
    unchanged_nights: int = 0


def night_inputs_digest(settings: Settings, folder: Path, night: str | None = None) -> str:
    """A hash of a night's source tables (name, size, mtime), its known variables and the settings."""
    from nightpipe.identify.vetoes import variables_file

    digest = hashlib.sha256(settings.digest("timeseries", "observatory", "photometry").encode())
    for path in product_files(folder, f"*{SOURCE_TABLE_SUFFIX}"):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    known = variables_file(settings, night) if night else None
    if known is not None and known.is_file():
        digest.update(known.read_bytes())
    return digest.hexdigest()[:32]


def _unchanged_night(db: Database, night: str, digest: str, products: Path) -> bool:
    with db.session() as session:
        run = session.scalars(
            select(StepRun).where(StepRun.step == STEP, StepRun.night == night, StepRun.frame_id.is_(None))
        ).first()
    return run is not None and run.input_hash == digest and run.status == "ok" and products.is_dir()


def read_source_tables(
    folder: Path, progress: Progress | None = None
) -> tuple[list[Table], list[tuple[str, str]]]:
    """Read every ``*.fits`` source table of a night folder; unreadable ones are returned with a reason."""
    progress = progress or NullProgress()
    paths = product_files(folder, f"*{SOURCE_TABLE_SUFFIX}")
    progress.start(len(paths), f"reading source tables of {folder.name}")
    tables: list[Table] = []
    bad: list[tuple[str, str]] = []
    for path in paths:
        try:
            table = read_source_table(path)
            missing = [
                c for c in ("x", "y", "ra", "dec", "aper_flux", "aper_flux_err") if c not in table.colnames
            ]
            if missing:
                raise TimeseriesError(f"source table lacks columns {', '.join(missing)}", path=path)
            if table.meta.get("bjd_tdb") is None:
                raise TimeseriesError("source table has no bjd_tdb in its meta", path=path)
            table.meta.setdefault("frame", path.stem)
            table.meta["table_path"] = str(path)
            tables.append(table)
        except NightpipeError as exc:
            bad.append((path.stem, str(exc)))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            bad.append((path.stem, f"{path}: unreadable source table ({exc.__class__.__name__}: {exc})"))
        progress.advance(path.name)
    progress.stop()
    return tables, bad


def _nights(sources: Path, night: str | None) -> list[str]:
    if night is not None:
        return [night]
    return sorted(p.name for p in sources.iterdir() if p.is_dir()) if sources.is_dir() else []


def _night_filter(db: Database, night: str) -> str | None:
    """The filter of most of the night's light frames (``None`` when no frame says)."""
    with db.session() as session:
        rows = session.execute(
            select(Frame.filter, func.count())
            .where(Frame.night == night, Frame.kind == "light")
            .group_by(Frame.filter)
            .order_by(func.count().desc())
        ).all()
    return next((str(f) for f, _ in rows if f), None)


def _frame_ids(db: Database, night: str) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(Frame.id, Frame.path).where(Frame.night == night)).all()
    return {Path(path).name.split(".")[0]: int(fid) for fid, path in rows}


def run_lightcurves(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    targets: Sequence[str] = (),
    progress: Progress | None = None,
    plots: bool = True,
) -> LightcurveSummary:
    """Build and fit the light curve of every configured target for one night (or every night).

    Parameters
    ----------
    settings
        ``paths.output`` locates the source tables and products; ``timeseries`` gives targets and fit.
    db
        Outcomes are recorded as step ``lightcurve`` (per night, and per dropped frame).
    night
        ``YYYY-MM-DD``; ``None`` processes every night folder under ``sources/``.
    targets
        Only these target names (default: all configured).
    """
    summary = LightcurveSummary()
    output = Path(settings.paths.output)
    chosen = [t for t in settings.timeseries.targets if not targets or t.name in targets]
    if not chosen:
        log.warning("no target configured: no light curve built (add a [[timeseries.targets]] block)")
        summary.skipped = "no target configured"
        return summary
    for name in _nights(output / "sources", night):
        summary.nights.append(name)
        folder = output / "sources" / name
        if not folder.is_dir():
            raise TimeseriesError(
                "no source tables for this night", path=folder, hint="run the photometry step"
            )
        digest = night_inputs_digest(settings, folder, name)
        if _unchanged_night(db, name, digest, output / "lightcurves" / name):
            log.info("night %s: source tables and settings unchanged; light curves kept", name)
            summary.unchanged_nights += 1
            continue
        tables, bad = read_source_tables(folder, progress)
        summary.unreadable.extend(bad)
        ids = _frame_ids(db, name)
        known = set(ids.values())
        for table in tables:  # the photometry step records the frame id in the table meta
            fid = table.meta.get("frame_id")
            if fid is not None and int(fid) in known:
                ids[Path(str(table.meta["frame"])).name.split(".")[0]] = int(fid)
        with db.session() as session:
            for stem, reason in bad:
                if stem in ids:
                    record_step(
                        session, step=STEP, status="failed", frame_id=ids[stem], night=name, reason=reason
                    )
        details: dict[str, Any] = {}
        filter_name = _night_filter(db, name)
        for target in chosen:
            start = time.perf_counter()
            try:
                result = _one_target(
                    settings, tables, target, output / "lightcurves" / name, plots=plots, night=name,
                    filter_name=filter_name,
                )  # fmt: skip
            except NightpipeError as exc:
                log.error("night %s, target %s: %s", name, target.name, exc)
                summary.failed.append((f"{name}/{target.name}", str(exc)))
                details[target.name] = {"status": "failed", "reason": str(exc)}
                continue
            result["night"] = name
            result["seconds"] = time.perf_counter() - start
            fit_summary = result.pop("fit_summary", None)
            summary.targets.append(result)
            details[target.name] = {k: v for k, v in result.items() if k != "dropped"}
            with db.session() as session:
                store_fit(session, name, result, fit_summary)
                for stem, reason in result["dropped"]:
                    key = Path(stem).name.split(".")[0]
                    if key in ids:
                        record_step(
                            session,
                            step=STEP,
                            status="skipped",
                            frame_id=ids[key],
                            night=name,
                            reason=f"{target.name}: {reason}",
                        )
        status = "failed" if details and all(d.get("status") == "failed" for d in details.values()) else "ok"
        with db.session() as session:
            record_step(
                session,
                step=STEP,
                status=status,
                night=name,
                details=jsonable(details),
                reason=None if status == "ok" else "every target failed",
                input_hash=digest,
                output_path=str(output / "lightcurves" / name),
            )
    return summary


def _one_target(
    settings: Settings,
    tables: list[Table],
    target: TargetConfig,
    outdir: Path,
    *,
    plots: bool,
    night: str,
    filter_name: str | None = None,
) -> dict[str, Any]:
    from nightpipe.identify.vetoes import known_variables_of, night_catalogue
    from nightpipe.timeseries.exports import aavso_filter
    from nightpipe.timeseries.field_record import field_record
    from nightpipe.timeseries.star_names import catalogue_names

    if target.ra is None or target.dec is None:
        raise TimeseriesError(f"target {target.name} has no coordinates", hint="set its ra and dec")
    if not tables:
        raise TimeseriesError("no readable source table")
    cfg = settings.timeseries
    priors = priors_from_target(target) if target.period is not None else None
    found, labels = known_variables_of(settings, night)
    built = build_lightcurve(
        tables,
        TargetSpec(
            target.name,
            target.ra,
            target.dec,
            tuple(target.comparisons),
            (*target.vsx, *found),
            (*("VSX (configured)" for _ in target.vsx), *labels),
            target.pixel,
        ),
        priors=priors,
        max_comparisons=cfg.max_comparisons,
        outlier_sigma=cfg.outlier_sigma,
        edge_margin=float(settings.photometry.edge_margin),
    )
    lc = target_times(built.lc, target.ra, target.dec, settings)
    exptime = float(np.nanmedian(lc.aux["exptime"])) if "exptime" in lc.aux else None
    fit = fit_transit(lc, priors, fit_options(cfg, exptime_s=exptime)) if priors is not None else None
    injection = (
        write_injection(outdir, safe_stem(target.name), fit, priors, fit_options(cfg, exptime_s=exptime), cfg)
        if fit is not None and priors is not None
        else None
    )
    stars = built.comparisons.stars
    catalogue = night_catalogue(settings, night)
    names = catalogue_names(built.matrix.ref_ra[stars], built.matrix.ref_dec[stars], catalogue)
    products = write_products(
        outdir,
        safe_stem(target.name),
        lc,
        fit,
        comparisons=built.comparisons,
        comparison_names=names,
        planet=target.planet,
        obscode=settings.observatory.aavso_code,
        filter_name=aavso_filter(filter_name),
        site=(settings.observatory.latitude, settings.observatory.longitude, settings.observatory.elevation),
        exptime_s=exptime,
        plots=plots,
        extra={
            "aperture": {
                "radii": list(built.aperture.radii),
                "scatter": list(built.aperture.scatter),
                "chosen": built.aperture.index,
                "rule": built.aperture.rule,
            },
            "dropped_frames": [list(d) for d in built.dropped],
            "field": field_record(built, names),
        },
    )
    out: dict[str, Any] = {
        "target": target.name,
        "status": "ok",
        "n_frames": len(tables),
        "n_points": len(lc),
        "aperture_px": lc.meta.get("aperture_px"),
        "aperture_fwhm_factor": lc.meta.get("aperture_fwhm_factor"),
        "comparisons": [int(s) for s in built.comparisons.stars],
        "products": {k: str(v) for k, v in {**products, **(injection or {})}.items()},
        "dropped": built.dropped,
    }
    if fit is not None:
        oc = fit.o_minus_c_min
        out.update(
            rp_rs=fit.params["rp_rs"].median,
            rp_rs_err=fit.params["rp_rs"].err,
            tc=fit.params["tc"].median,
            tc_err=fit.params["tc"].err,
            a_rs=fit.value("a_rs"),
            inclination=fit.value("inc"),
            depth=fit.value("rp_rs") ** 2,
            o_minus_c_min=None if oc is None else oc[0],
            o_minus_c_err_min=None if oc is None else oc[1],
            rms=fit.rms,
            binned_rms=fit.binned_rms,
            binned_expected=fit.binned_expected,
            bin_minutes=fit.bin_minutes,
            detrend=list(fit.detrend_vectors),
            fit_summary=fit.summary(),
        )
    return out


def target_times(lc: LightCurve, ra: float, dec: float, settings: Settings) -> LightCurve:
    """Recompute BJD_TDB for the target's own coordinates from the JD_UTC of the tables.

    The source tables' ``bjd_tdb`` may be computed for the pointing; across a field the
    barycentric correction changes by seconds. Without JD_UTC the tables' times are kept.
    """
    if lc.jd_utc is None or not np.all(np.isfinite(lc.jd_utc)):
        return lc
    bjd = bjd_tdb_from_jd_utc(lc.jd_utc, ra, dec, settings.observatory)
    shift = float(np.max(np.abs(bjd - lc.time)) * 86400.0) if len(lc) else 0.0
    log.info("BJD_TDB recomputed for the target's coordinates (largest change %.1f s)", shift)
    source = f"BJD_TDB for the target (ra {ra:.5f}, dec {dec:.5f}) from the frames' JD_UTC, ERFA"
    return lc.with_time(bjd, time_source=f"{source}; tables: {lc.meta.get('time_source')}")


def store_fit(
    session: Session, night: str, result: dict[str, Any], fit_summary: dict[str, Any] | None
) -> None:
    """Insert or replace the ``transit_fits`` row of (night, target)."""
    row = session.scalars(
        select(TransitFitRow).where(TransitFitRow.night == night, TransitFitRow.target == result["target"])
    ).first()
    if row is None:
        row = TransitFitRow(night=night, target=result["target"])
        session.add(row)
    row.time_scale = "BJD_TDB"
    row.n_frames = result.get("n_frames")
    row.n_points = result.get("n_points")
    row.aperture_px = result.get("aperture_px")
    row.comparisons = result.get("comparisons")
    row.csv_path = result.get("products", {}).get("csv")
    for key in (
        "tc",
        "tc_err",
        "rp_rs",
        "rp_rs_err",
        "a_rs",
        "inclination",
        "depth",
        "o_minus_c_min",
        "o_minus_c_err_min",
        "rms",
        "binned_rms",
        "binned_expected",
        "bin_minutes",
        "detrend",
    ):
        value = result.get(key)
        setattr(row, key, None if isinstance(value, float) and not math.isfinite(value) else value)
    row.details = jsonable(fit_summary) if fit_summary is not None else None
    session.flush()
