"""What a night's zero points make of all its frames: sources.csv, catalogue agreement, extinction, plots."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.calphot.accuracy import CatalogAgreement, catalog_agreement, usable_measurements
from nightpipe.calphot.extinction import fit_extinction
from nightpipe.calphot.frame import FrameCalibration
from nightpipe.calphot.plots import plot_catalog_vs_instrumental, plot_zero_point_vs_airmass
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import atomic_open

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibrated:
    """A frame's zero-point fit and calibrated table, with its airmass."""

    cal: FrameCalibration
    airmass: float | None


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
        # a plain writer on lists writes what csv.DictWriter wrote, without its per-row checks
        # (150,000 rows a night: issue 22)
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows([row.get(k, "---") for k in fields] for row in rows)
    return destination


def csv_rows(table: Table, band: str, image: str) -> list[dict[str, object]]:
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


def agreement_columns(table: Table) -> dict[str, np.ndarray]:
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


@dataclass
class NightFrames:
    """What calibrating the frames of one night gave, for its products and the summary."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0
    band: str = "?"
    zero_points: list[float] = field(default_factory=list)
    series: list[tuple[float, float, float]] = field(default_factory=list)  # airmass, zp, zp error
    colour_series: list[tuple[float, float, float]] = field(default_factory=list)  # airmass, c, c error
    csv_rows: list[dict[str, object]] = field(default_factory=list)
    agreement_columns: list[dict[str, np.ndarray]] = field(default_factory=list)
    sample: tuple[FrameCalibration, str] | None = None


def add_frame(out: NightFrames, result: Calibrated, path: Path, table: Table, *, middle: bool) -> None:
    """A calibrated frame's part in the night's products."""
    cal, at = result.cal, result.airmass
    if out.sample is None or middle:
        out.sample = (cal, path.stem)
    out.band = cal.reference.band
    out.zero_points.append(cal.fit.zero_point)
    airmass = at if at is not None else np.nan
    out.series.append((airmass, cal.fit.zero_point, cal.fit.zero_point_err))
    if cal.fit.colour_term is not None and cal.fit.colour_term_err is not None:
        out.colour_series.append((airmass, cal.fit.colour_term, cal.fit.colour_term_err))
    image = Path(str(table.meta.get("frame", path.stem))).name
    out.csv_rows += csv_rows(cal.table, out.band, image)
    out.agreement_columns.append(agreement_columns(cal.table))


@dataclass
class NightProducts:
    sources_csv: Path | None = None
    agreement: CatalogAgreement | None = None
    agreement_csv: Path | None = None
    k: float | None = None
    k_err: float | None = None
    k2: float | None = None  # second-order extinction: the colour term's change with airmass
    k2_err: float | None = None


def write_night_products(
    output: Path, night: str, done: NightFrames, catalog_name: str, agreement_max_mag: float
) -> NightProducts:
    """The night's plots, sources.csv, catalogue agreement and extinction fit."""
    out = NightProducts()
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
    if len(done.colour_series) >= 3:
        x, c, c_err = (np.array(v) for v in zip(*done.colour_series, strict=True))
        try:  # c(X) = c0 - k'' X: the same straight line as first-order extinction, on the colour term
            second = fit_extinction(c, c_err, x)
            out.k2, out.k2_err = second.k, second.k_err
            log.info("night %s: second-order extinction k'' = %.3f ± %.3f", night, second.k, second.k_err)
        except NightpipeError as exc:
            log.info("second-order extinction not fitted: %s", exc)
    return out
