"""``nightpipe tess``: real and synthetic files to products, failures recorded, CLI exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from sqlalchemy import select

from nightpipe.cli.app import main
from nightpipe.config import load_settings
from nightpipe.store import open_database
from nightpipe.store.models import StepRun
from nightpipe.tess.analysis import TessOptions, run_tess, step_name, target_priors
from nightpipe.tess.synthetic import InjectedTransit, write_synthetic_lightcurve

TESS_TPF = "tess-tpf/tess25155310-s01-first-cadences.fits.gz"
K2_IMAGE = "tess-tpf/ktwo201907706-c01-first-cadence.fits.gz"


def test_run_tess_real_files_products_and_failures(tmp_path: Path, shared_data: Path) -> None:
    settings = load_settings(None, environ={})
    tpf = shared_data / TESS_TPF
    before = hashlib.sha256(tpf.read_bytes()).hexdigest()
    junk = tmp_path / "junk file.fits"
    junk.write_bytes(b"SIMPLE  = nonsense" * 10)
    db = open_database(f"sqlite:///{tmp_path / 'np.sqlite'}")
    try:
        summary = run_tess(
            settings, [tpf, shared_data / K2_IMAGE, junk], TessOptions(), db=db, output=tmp_path
        )
        with db.session() as session:
            rows = {r.step: (r.status, r.reason) for r in session.scalars(select(StepRun))}
    finally:
        db.dispose()
    assert hashlib.sha256(tpf.read_bytes()).hexdigest() == before
    assert summary.n_ok == 2 and list(summary.failed) == [junk]
    assert rows[step_name(tpf)] == ("ok", None)
    status, reason = rows[step_name(junk)]
    assert status == "failed" and reason is not None and "junk file.fits" in reason
    by_target = {t.target: t for t in summary.targets}
    tess = by_target["TIC 25155310"]
    assert tess.label == "TESS-S01" and tess.fit is None  # no period: light curve only
    table = Table.read(tess.products["lightcurve"], format="ascii.ecsv")
    with fits.open(tpf) as hdul:
        expected = hdul[1].data["TIME"][1:] + 2457000.0  # cadence 0 is flagged (Earth point)
    np.testing.assert_allclose(table["bjd_tdb"], expected, rtol=0, atol=1e-9)
    assert table.meta["time_scale"] == "BJD_TDB" and table.meta["aperture_source"] == "pipeline"
    phot = Table.read(tess.products["photometry"], format="ascii.ecsv")
    assert len(phot) == 5 and phot["good"].tolist() == [False, True, True, True, True]
    assert tess.products["lc_plot"].stat().st_size > 1000
    aij = Table.read(tess.products["csv"], format="ascii.csv")  # the shared AstroImageJ-style CSV
    np.testing.assert_allclose(aij["BJD_TDB"], expected, rtol=0, atol=1e-6)
    assert {"rel_flux_T1", "rel_flux_err_T1", "Source-Sky_T1", "Sky/Pixel_T1"} <= set(aij.colnames)
    assert by_target["EPIC 201907706"].label == "K2-C01"


def test_cli_fits_a_synthetic_sector_with_a_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transit = InjectedTransit(2458326.0, 2.5, rp_rs=0.1, a_rs=9.0, inclination=88.5)
    lc_file = write_synthetic_lightcurve(
        tmp_path / "sector lc.fits", transit=transit, days=6, noise_ppm=800
    ).path
    args = [
        "--set", f"database.url=sqlite:///{tmp_path / 'db.sqlite'}",
        "--set", "timeseries.sampler=none",
        "-q", "tess", str(lc_file), "--period", "2.5", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "SYNTH 1" in out and "transit times" in out
    folder = tmp_path / "out" / "lightcurves"
    fit_json = next(folder.rglob("SYNTH_1_fit.json"))
    summary = json.loads(fit_json.read_text())
    rp = summary["params"]["rp_rs"]
    assert abs(rp["median"] - 0.1) < 3 * 0.5 * (rp["minus"] + rp["plus"])
    assert summary["software"].startswith("nightpipe")  # written by the shared exporter
    assert len(summary["multi_transit"]["transit_times"]) >= 2
    assert next(folder.rglob("SYNTH_1_AAVSO.txt")).read_text().startswith("#TYPE=EXOPLANET")
    aij = Table.read(next(folder.rglob("SYNTH_1.csv")), format="ascii.csv")
    assert {"BJD_TDB", "rel_flux_T1", "model_T1", "used_in_fit"} <= set(aij.colnames)
    times = Table.read(next(folder.rglob("SYNTH_1_transit_times.csv")), format="ascii.csv")
    assert times["epoch"].tolist() == list(range(len(times))) and len(times) >= 2
    assert all(
        next(folder.rglob(f"SYNTH_1_{kind}.png")).stat().st_size > 1000 for kind in ("lc", "fold", "oc")
    )


def test_cli_only_bad_files_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fits"
    bad.write_text("nope")
    args = ["--set", f"database.url=sqlite:///{tmp_path / 'db.sqlite'}", "-q", "tess", str(bad)]
    assert main(args) == 1
    assert main([*args, "--aperture", "round"]) == 2  # a bad option value is a config error


def test_target_priors_from_settings_and_options(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        overrides=['timeseries.targets=[{name="WASP-126", period=3.2888, t0_bjd=2458327.52, a_rs=10.3}]'],
        environ={},
    )
    pri = target_priors("wasp-126", settings, TessOptions())
    assert pri is not None and pri.period == 3.2888 and pri.t0 == 2458327.52 and pri.a_rs == 10.3
    override = target_priors("WASP 126", settings, TessOptions(period=3.0, t0=1.0))
    named = TessOptions(target="WASP-126", fit=False)
    result = run_tess(
        settings, [write_synthetic_lightcurve(tmp_path / "n.fits", days=1).path], named, output=tmp_path
    )
    assert [t.target for t in result.targets] == ["WASP-126"]
    assert result.targets[0].combined.meta["target"] == "WASP-126"
    assert result.targets[0].combined.meta["object"] == "SYNTH 1"
    assert override is not None and override.period == 3.0 and override.t0 == 1.0
    assert target_priors("TIC 1", settings, TessOptions()) is None


def test_outcomes_recorded_in_sqlite_and_postgresql(db_url: str, tmp_path: Path, shared_data: Path) -> None:
    settings = load_settings(None, environ={})
    bad = tmp_path / "truncated.fits"
    bad.write_bytes((shared_data / K2_IMAGE).read_bytes()[:1000])
    db = open_database(db_url)
    try:
        files = [shared_data / K2_IMAGE, bad]
        run_tess(settings, files, TessOptions(), db=db, output=tmp_path)
        run_tess(settings, files, TessOptions(), db=db, output=tmp_path)  # a re-run updates, never duplicates
        with db.session() as session:
            rows = list(session.scalars(select(StepRun)))
    finally:
        db.dispose()
    assert len(rows) == 2
    by_step = {r.step: r for r in rows}
    assert by_step[step_name(shared_data / K2_IMAGE)].status == "ok"
    failed = by_step[step_name(bad)]
    assert failed.status == "failed" and "truncated.fits" in (failed.reason or "")
    assert failed.output_path == str(bad.resolve())


def test_files_of_one_target_are_combined(tmp_path: Path) -> None:
    from nightpipe.tess.analysis import combine, measure_file
    from nightpipe.tess.results import FileLightCurve

    first = write_synthetic_lightcurve(tmp_path / "s1.fits", days=1, start_bjd=2458330.0, seed=1).path
    second = write_synthetic_lightcurve(tmp_path / "s2.fits", days=1, start_bjd=2458320.0, seed=2).path
    curves: list[FileLightCurve] = [measure_file(p, TessOptions()) for p in (first, second)]
    joined = combine(curves)
    assert len(joined) == sum(len(c.lightcurve) for c in curves)
    assert np.all(np.diff(joined.time) > 0) and joined.time[0] < 2458321.0
    assert joined.meta["files"] == [str(first), str(second)]
    assert set(joined.aux) == {"sky", "x", "y"}
    assert np.median(joined.flux) == pytest.approx(1.0, abs=1e-3)


def test_systematics_in_the_cli_path_protect_the_transit(tmp_path: Path) -> None:
    from nightpipe.tess.analysis import in_transit_mask, measure_file
    from nightpipe.tess.synthetic import write_synthetic_tpf

    transit = InjectedTransit(2458325.5, 3.0, rp_rs=0.1, a_rs=10.0, inclination=88.0)
    truth = write_synthetic_tpf(tmp_path / "jit.fits", transit=transit, jitter_px=0.3, seed=5)
    settings = load_settings(None, environ={})
    options = TessOptions(systematics="regression", period=3.0, t0=transit.t0_bjd, aperture="threshold")
    item = measure_file(truth.path, options, settings)
    assert item.photometry is not None and item.photometry.meta["systematics"] == "regression"
    centre = np.abs(item.lightcurve.time - transit.t0_bjd) < 0.02
    model_centre = np.abs(truth.time_bjd - transit.t0_bjd) < 0.02
    depth = 1 - np.median(item.lightcurve.flux[centre]) / np.median(item.lightcurve.flux[~centre])
    assert depth == pytest.approx(1 - np.median(truth.model[model_centre]), rel=0.1)
    mask = in_transit_mask(truth.time_bjd, target_priors("SYNTH 1", settings, options))
    assert mask is not None and mask[np.argmin(np.abs(truth.time_bjd - transit.t0_bjd))]
    assert in_transit_mask(truth.time_bjd, None) is None


def test_custom_aperture_file_from_the_cli_path(tmp_path: Path, shared_data: Path) -> None:
    from nightpipe.tess.analysis import measure_file
    from nightpipe.tess.readers import read_aperture_mask

    grid = np.zeros((11, 11), dtype=int)
    grid[4:7, 4:7] = 1
    text = tmp_path / "ap.txt"
    text.write_text("# a 3x3 box\n" + "\n".join(",".join(str(v) for v in row) for row in grid))
    np.testing.assert_array_equal(read_aperture_mask(text), grid.astype(bool))
    item = measure_file(shared_data / TESS_TPF, TessOptions(aperture_mask=text, quality="none"))
    assert item.photometry is not None and item.photometry.meta["aperture_source"] == "custom"
    with fits.open(shared_data / TESS_TPF) as hdul:
        expected = hdul[1].data["FLUX"][:, 4:7, 4:7].sum(axis=(1, 2))
    np.testing.assert_allclose(item.photometry.flux, expected, rtol=1e-6)
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0\n1\n")
    from nightpipe.errors import FitsReadError, PhotometryError

    with pytest.raises(FitsReadError, match="rectangular"):
        read_aperture_mask(bad)
    with pytest.raises(PhotometryError, match="custom aperture of shape"):
        measure_file(shared_data / TESS_TPF, TessOptions(aperture_mask=write_mask(tmp_path)))


def write_mask(folder: Path) -> Path:
    path = folder / "small.fits"
    fits.PrimaryHDU(np.ones((3, 3), dtype=np.int16)).writeto(path)
    return path
