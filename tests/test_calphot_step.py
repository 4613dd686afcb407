"""The zero-point step on a synthetic night: zero points, extinction, database rows, exports."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from sqlalchemy import func, select

from nightpipe.calphot.step import run_zeropoints
from nightpipe.catalogs.schema import standard_table
from nightpipe.catalogs.service import ReferenceCatalogs
from nightpipe.config import Settings, load_settings
from nightpipe.errors import CatalogError
from nightpipe.photometry.table import read_source_table, write_source_table
from nightpipe.store import Database, open_database
from nightpipe.store.models import Frame
from nightpipe.store.models_calphot import CalibratedMag, ZeroPoint

NIGHT = "2020-02-02"


def _night(tmp_path: Path, db_url: str) -> tuple[Settings, Database, Table, np.ndarray, np.ndarray]:
    settings = load_settings(
        None,
        environ={},
        overrides=[
            f"paths.output={str(tmp_path / 'out')!r}",
            f"paths.cache={str(tmp_path / 'cache')!r}",
            f"database.url={db_url!r}",
            "catalog.order=['apass']",
            "catalog.offline=true",
        ],
    )
    db = open_database(settings.database.url)
    rng = np.random.default_rng(7)
    n = 120
    ra = 150.0 + rng.uniform(-0.3, 0.3, n)
    dec = 20.0 + rng.uniform(-0.3, 0.3, n)
    vmag = rng.uniform(9.5, 15.0, n)
    catalog = standard_table(
        ids=np.array([f"S{i}" for i in range(n)]),
        ra=ra,
        dec=dec,
        mags={"V": vmag},
        errors={"V": np.full(n, 0.01)},
        catalog="apass",
        epoch=2000.0,
    )
    airmass = np.linspace(1.05, 1.9, 12)
    zp_true = 21.3 - 0.2 * airmass
    folder = settings.paths.output / "sources" / NIGHT
    folder.mkdir(parents=True)
    for i, (x, zp) in enumerate(zip(airmass, zp_true, strict=True)):
        flux = 10 ** (-0.4 * (vmag - zp)) * 30.0
        err = np.sqrt(flux + 200.0)
        fluxes = np.stack([flux * 0.9, flux], axis=1) + rng.normal(0, err)[:, None]
        flags = np.zeros(n, int)
        jitter = rng.normal(0, 0.3 / 3600, (2, n))
        cols = {
            "id": np.arange(n),
            "ra": ra + jitter[0],
            "dec": dec + jitter[1],
            "x": (ra - 150.0) * np.cos(np.radians(20.0)) * 3600 + 1200.0,  # 1"/px
            "y": (dec - 20.0) * 3600 + 1200.0,
            "aper_flux": fluxes,
            "aper_flux_err": np.stack([err, err], 1),
            "flags": flags,
        }
        if i == 0:
            # three stars blended with a detected neighbour 2 px away that doubles their flux
            fluxes[:3] *= 2.0
            flags[:3] = 512
            blends = {k: v[:3].copy() for k, v in cols.items()}
            blends["x"] = blends["x"] + 2.0
            blends["ra"] = blends["ra"] + 10.0 / 3600  # detected, but not matched to the catalogue
            blends["aper_flux"] = fluxes[:3] / 2.0
            blends["id"] = np.arange(n, n + 3)
            cols = {k: np.concatenate([v, blends[k]]) for k, v in cols.items()}
        t = Table(cols)
        for name in ("fwhm", "ellipticity", "theta", "peak", "bkg"):  # unused here
            t[name] = np.zeros(len(t))
        t["aper_bkg_err"] = np.zeros((len(t), 2))
        t.meta.update(
            {
                "aper_radii_px": [3.0, 6.0],
                "fwhm_px": 2.4,
                "exptime": 30.0,
                "airmass": float(x),
                "jd_utc": 2458881.6 + i * 0.01,
                "frame_id": None,
                "frame": f"/raw/f{i:02d}.fits",
            }
        )
        with db.session() as s:
            frame = Frame(path=f"/raw/f{i:02d}.fits", size=1, mtime=0, kind="light", filter="V", night=NIGHT)
            s.add(frame)
            s.flush()
            t.meta["frame_id"] = frame.id
        write_source_table(t, folder / f"f{i:02d}.fits")
    return settings, db, catalog, zp_true, airmass


def test_zero_points_and_extinction_recovered(tmp_path: Path, db_url: str) -> None:
    settings, db, catalog, zp_true, _airmass = _night(tmp_path, db_url)
    cats = ReferenceCatalogs(
        settings.catalog, settings.paths.cache, local={"apass": lambda ra, dec, r, m: catalog}
    )
    summary = run_zeropoints(settings, db, night=NIGHT, catalogs=cats)
    assert summary.processed == 12 and summary.failed == 0
    assert summary.extinction_k == pytest.approx(0.2, abs=3 * (summary.extinction_k_err or 1))
    with db.session() as s:
        zps = s.scalars(select(ZeroPoint).order_by(ZeroPoint.frame_id)).all()
        assert len(zps) == 12
        for row, truth in zip(zps, zp_true, strict=True):
            assert abs(row.zero_point - truth) < 4 * row.zero_point_err + 0.002
            assert row.band == "V" and row.catalog == "apass" and row.aperture_px == 6.0
        assert s.scalar(select(func.count()).select_from(CalibratedMag)) == 12 * 120 + 3  # + the 3 neighbours
    out = settings.paths.output
    with db.session() as s:
        mags = s.execute(
            select(CalibratedMag.mag, CalibratedMag.catalog_mag).where(CalibratedMag.frame_id == 6)
        ).all()
    diffs = [abs(m - c) for m, c in mags if c is not None]
    assert len(diffs) > 100 and float(np.median(diffs)) < 0.02
    assert "zero_point" not in read_source_table(out / "sources" / NIGHT / "f05.fits").meta
    with open(out / "tables" / NIGHT / "sources.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "id",
        "RA_C",
        "DEC_C",
        "RA_M",
        "DEC_M",
        "DIF",
        "MAG_V",
        "MAG_err",
        "CMAG_V",
        "DATETIME",
        "IMGNAME",
    ]
    assert len(rows) == 12 * 120 + 3
    assert (out / "plots" / NIGHT / "zeropoint_fit.png").stat().st_size > 1000
    assert (out / "plots" / NIGHT / "zeropoint_airmass.png").stat().st_size > 1000
    again = run_zeropoints(settings, db, night=NIGHT, catalogs=cats)
    assert (again.processed, again.skipped) == (0, 12)  # nothing changed: nothing redone
    redone = out / "sources" / NIGHT / "f03.fits"
    write_source_table(read_source_table(redone), redone)  # photometry again
    third = run_zeropoints(settings, db, night=NIGHT, catalogs=cats)
    assert (third.processed, third.skipped) == (1, 11)
    with open(out / "tables" / NIGHT / "sources.csv", newline="") as handle:  # still the whole night
        assert len(list(csv.DictReader(handle))) == 12 * 120 + 3
    with db.session() as s:  # and no duplicate rows
        assert s.scalar(select(func.count()).select_from(ZeroPoint)) == 12
        assert s.scalar(select(func.count()).select_from(CalibratedMag)) == 12 * 120 + 3  # + the 3 neighbours
    db.dispose()


def test_offline_without_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    settings, db, _, _, _ = _night(tmp_path, f"sqlite:///{tmp_path}/x.sqlite")
    with pytest.raises(CatalogError, match="offline"):
        run_zeropoints(settings, db, night=NIGHT)
    db.dispose()
