"""Products: AstroImageJ CSV, AAVSO report, fit JSON, plots; CSV mode round trip; the night step."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from nightpipe.cli.app import main
from nightpipe.config import load_settings
from nightpipe.photometry.table import write_source_table
from nightpipe.store import open_database
from nightpipe.store.models import StepRun
from nightpipe.store.models_timeseries import TransitFitRow
from nightpipe.timeseries.csvmode import fit_csv, lightcurve_from_table, read_table
from nightpipe.timeseries.exports import aavso_filter, aavso_report_lines, aij_columns, write_aij_csv
from nightpipe.timeseries.simulate import TransitTruth, simulate_lightcurve, simulate_source_tables
from nightpipe.timeseries.step import run_lightcurves
from nightpipe.timeseries.transit import FitOptions, fit_transit

TRUTH = TransitTruth()


def _settings(tmp_path: Path, field=None, **extra: str):
    ra, dec = (31.04, 46.69) if field is None else (float(field.ra[0]), float(field.dec[0]))
    overrides = [
        f"paths.output='{tmp_path / 'out'}'",
        f"database.url='sqlite:///{tmp_path / 'np.sqlite'}'",
        "timeseries.steps=150",
        "timeseries.walkers=16",
        f"timeseries.targets=[{{name='SIM 1', ra={ra!r}, dec={dec!r}, period={TRUTH.period!r}, "
        f"t0_bjd={TRUTH.tc!r}, t0_err=0.0001, rp_rs=0.12, a_rs={TRUTH.a_rs!r}, "
        f"inclination={TRUTH.inc!r}, limb_darkening=[0.4, 0.26], limb_darkening_err=0.05}}]",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    return load_settings(None, overrides=overrides, environ={})


def test_aij_columns_and_csv(tmp_path: Path) -> None:
    lc = simulate_lightcurve(TRUTH, seed=1)
    lc = lc.with_meta(naxis2=500)
    lc = type(lc)(
        time=lc.time,
        flux=lc.flux,
        flux_err=lc.flux_err,
        jd_utc=lc.time - 0.0008,
        comparison_flux=np.column_stack([np.full(len(lc), 100.0), np.full(len(lc), 300.0)]),
        target_flux=np.full(len(lc), 200.0),
        aux={**lc.aux, "x": np.full(len(lc), 9.0), "y": np.full(len(lc), 19.0), "sky": np.ones(len(lc))},
        meta=lc.meta,
    )
    cols = aij_columns(lc)
    assert list(cols)[:4] == ["J.D.-2400000", "BJD_TDB", "AIRMASS", "rel_flux_T1"]
    np.testing.assert_allclose(cols["rel_flux_C2"], 100 / 300)  # AIJ: over the other comparisons
    np.testing.assert_allclose(cols["rel_flux_C3"], 300 / 100)
    assert cols["X(FITS)_T1"][0] == 10.0 and cols["Y(FITS)_T1"][0] == 20.0
    assert cols["Y(IJ)_T1"][0] == pytest.approx(500 - 20 + 0.5)
    path = write_aij_csv(tmp_path / "a b" / "lc.csv", lc)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(lc)
    assert float(rows[0]["BJD_TDB"]) == pytest.approx(lc.time[0], abs=1e-9)
    assert float(rows[0]["J.D.-2400000"]) == pytest.approx(lc.time[0] - 0.0008 - 2400000, abs=1e-9)


def test_csv_export_round_trip_reproduces_the_fit(tmp_path: Path) -> None:
    lc = simulate_lightcurve(TRUTH, seed=9)
    opts = FitOptions(sampler="none")
    fit = fit_transit(lc, TRUTH.priors(), opts)
    path = write_aij_csv(tmp_path / "lc.csv", lc, fit)
    back = lightcurve_from_table(read_table(path), path=path)
    np.testing.assert_allclose(back.time, lc.time, atol=1e-9)
    np.testing.assert_allclose(back.flux, lc.flux, rtol=1e-9)
    np.testing.assert_allclose(back.aux["airmass"], lc.aux["airmass"], rtol=1e-9)
    again = fit_transit(back, TRUTH.priors(), opts)
    for name in ("tc", "rp_rs", "a_rs", "inc"):
        # the same fit to within 1 % of its own error (optimizer tolerance)
        assert abs(again.params[name].median - fit.params[name].median) < 0.01 * fit.params[name].err
    assert again.detrend_vectors == fit.detrend_vectors


# the header keys EXOTIC's AAVSO writer emits, in its order (OBSLAT/OBSLON/OBSELEV are optional)
EXOTIC_KEYS = [
    "TYPE",
    "OBSCODE",
    "SECONDARY_OBSCODES",
    "SOFTWARE",
    "DELIM",
    "DATE_TYPE",
    "OBSTYPE",
    "STAR_NAME",
    "EXOPLANET_NAME",
    "BINNING",
    "EXPOSURE_TIME",
    "OBSLAT",
    "OBSLON",
    "OBSELEV",
    "COMP_STAR-XC",
    "NOTES",
    "DETREND_PARAMETERS",
    "MEASUREMENT_TYPE",
    "FILTER",
    "PRIORS",
    "RESULTS",
]
AAVSO_FILTER_CODES = {
    "U",
    "B",
    "V",
    "R",
    "I",
    "J",
    "H",
    "K",
    "CV",
    "CR",
    "SU",
    "SG",
    "SR",
    "SI",
    "SZ",
    "TG",
    "TB",
    "TR",
}


def validate_aavso_exoplanet(lines: list[str]) -> dict[str, str]:
    """Check a report against the AAVSO exoplanet format (as EXOTIC writes it); returns its header."""
    keys = [ln[1:].split("=", 1)[0] for ln in lines if ln.startswith("#") and "=" in ln]
    header = {
        ln[1:].split("=", 1)[0]: ln.split("=", 1)[1] for ln in lines if ln.startswith("#") and "=" in ln
    }
    assert keys == [k for k in EXOTIC_KEYS if k in keys], keys  # EXOTIC's order
    assert set(EXOTIC_KEYS) - {"OBSLAT", "OBSLON", "OBSELEV"} <= set(keys)
    assert header["TYPE"] == "EXOPLANET" and header["DELIM"] == ","
    assert header["DATE_TYPE"] in {"JD_UTC", "HJD_UTC", "BJD_UTC", "BJD_TT", "BJD_TDB"}
    assert header["OBSTYPE"] in {"CCD", "DSLR"} and header["MEASUREMENT_TYPE"] in {"Rflux", "Dmag", "Rnflux"}
    assert header["FILTER"] in AAVSO_FILTER_CODES
    assert "+/- 0.000000" not in header["PRIORS"]
    columns = next(ln for ln in lines if ln.startswith("#DATE,")).lstrip("#").split(",")
    assert columns[:3] == ["DATE", "DIFF", "ERR"]
    assert (header["DETREND_PARAMETERS"] == "NONE") == (len(columns) == 3)
    data = [ln.split(",") for ln in lines if ln and not ln.startswith("#")]
    assert data and all(len(row) == len(columns) for row in data)
    assert all(len(row[0].split(".")[1]) == 8 for row in data)  # BJD with 8 decimals
    return header


def test_aavso_report_validates_and_says_the_filter_site_and_observer() -> None:
    lc = simulate_lightcurve(TRUTH, seed=4)
    fit = fit_transit(lc, TRUTH.priors(), FitOptions(sampler="none"))
    lines = aavso_report_lines(fit, star_name="SIM", planet_name="SIM b", obscode="NPX", exptime_s=60,
                               filter_name=aavso_filter("Johnson V"), comp_stars=["J020410.30+464116.0"],
                               site=(31.68, -110.88, 2345.0))  # fmt: skip
    header = validate_aavso_exoplanet(lines)
    assert header["FILTER"] == "V" and header["OBSCODE"] == "NPX"
    assert header["OBSLAT"] == "+31.6800" and header["OBSLON"] == "-110.8800" and header["OBSELEV"] == "2345"
    assert header["COMP_STAR-XC"] == "J020410.30+464116.0"
    flat = fit_transit(lc, TRUTH.priors(), FitOptions(sampler="none", detrend=()))
    assert validate_aavso_exoplanet(aavso_report_lines(flat, star_name="SIM", planet_name="SIM b"))[
        "DETREND_PARAMETERS"] == "NONE"  # fmt: skip


def test_aavso_report_format() -> None:
    lc = simulate_lightcurve(TRUTH, seed=4)
    fit = fit_transit(lc, TRUTH.priors(), FitOptions(sampler="none"))
    lines = aavso_report_lines(fit, star_name="SIM", planet_name="SIM b", obscode="XYZ", exptime_s=60)
    assert lines[0] == "#TYPE=EXOPLANET" and "#OBSCODE=XYZ" in lines
    assert "#DATE_TYPE=BJD_TDB" in lines and "#DELIM=," in lines
    header = lines.index("#DATE,DIFF,ERR,DETREND_1")
    data = [row.split(",") for row in lines[header + 1 :]]
    assert len(data) == int(fit.used.sum())
    assert all(len(row) == 4 for row in data)
    assert any(line.startswith("#RESULTS=Tc=") for line in lines)


def test_fit_csv_writes_every_product(tmp_path: Path) -> None:
    lc = simulate_lightcurve(TRUTH, seed=2)
    path = tmp_path / "my light curve.csv"
    cols = {
        "BJD_TDB": lc.time,
        "rel_flux_T1": lc.flux,
        "rel_flux_err_T1": lc.flux_err,
        "AIRMASS": lc.aux["airmass"],
    }
    Table(cols).write(path, format="ascii.csv")
    settings = _settings(tmp_path)
    fit, products = fit_csv(path, settings, target="SIM 1", outdir=tmp_path / "out")
    assert set(products) >= {"csv", "json", "aavso", "plot_fit", "plot_corner"}
    data = json.loads(products["json"].read_text())
    assert data["params"]["rp_rs"]["median"] == pytest.approx(fit.params["rp_rs"].median)
    assert data["binned"]["white_noise_expected"] > 0
    assert data["ephemeris"]["o_minus_c_min"] is not None
    assert products["plot_fit"].stat().st_size > 10_000
    assert abs(fit.params["rp_rs"].median - TRUTH.rp_rs) < 3 * fit.params["rp_rs"].err


def test_cli_fit_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lc = simulate_lightcurve(TRUTH, seed=3)
    path = tmp_path / "lc.csv"
    Table({"MJD": lc.time - 2400000.5, "flux": lc.flux}).write(path, format="ascii.csv")
    code = main(
        [
            "lightcurve",
            "fit",
            str(path),
            "--period",
            str(TRUTH.period),
            "--t0",
            str(TRUTH.tc),
            "--a-rs",
            "5.344",
            "--inc",
            "88.98",
            "--u1",
            "0.4",
            "--u2",
            "0.26",
            "--no-sampler",
            "--no-plots",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "rp_rs" in out and "O-C" in out
    code = main(["lightcurve", "fit", str(path), "--no-sampler"])
    assert code != 0
    assert "period" in capsys.readouterr().err
    code = main(["lightcurve", "fit", str(tmp_path / "missing.csv"), "--period", "2"])
    assert code != 0 and "missing.csv" in capsys.readouterr().err


def _write_night(tmp_path: Path, n_frames: int = 50) -> tuple[object, Path]:
    tables, field = simulate_source_tables(TRUTH, n_frames=n_frames, seed=6)
    folder = tmp_path / "out" / "sources" / "2017-12-19"
    folder.mkdir(parents=True)
    for t in tables:
        write_source_table(t, folder / f"{Path(t.meta['frame']).stem}.fits")
    return field, folder


def test_run_lightcurves_on_a_synthetic_night(tmp_path: Path, db_url: str) -> None:
    field, folder = _write_night(tmp_path)
    (folder / "broken.fits").write_text("SIMPLE  =                    T / truncated\n")
    settings = _settings(tmp_path, field, **{"database.url": f"'{db_url}'", "timeseries.sampler": "'none'"})
    db = open_database(settings.database.url)
    summary = run_lightcurves(settings, db, night="2017-12-19", plots=False)
    assert not summary.failed, summary.failed
    assert [stem for stem, _ in summary.unreadable] == ["broken"]
    (result,) = summary.targets
    assert result["n_frames"] == 50 and result["n_points"] >= 47
    assert abs(result["rp_rs"] - TRUTH.rp_rs) < 3 * result["rp_rs_err"]
    # BJD_TDB recomputed for the target from the tables' JD_UTC: the mid-time stays on the truth
    assert abs(result["tc"] - TRUTH.tc) < 3 * result["tc_err"]
    outdir = tmp_path / "out" / "lightcurves" / "2017-12-19"
    assert (outdir / "SIM_1.csv").is_file() and (outdir / "SIM_1_fit.json").is_file()
    with db.session() as session:
        rows = session.query(StepRun).filter_by(step="lightcurve").all()
        assert any(r.night == "2017-12-19" and r.status == "ok" for r in rows)
        (stored,) = session.query(TransitFitRow).all()
        assert stored.target == "SIM 1" and stored.rp_rs == pytest.approx(result["rp_rs"])
        assert stored.details is not None and "params" in stored.details
    # running again replaces the row
    run_lightcurves(settings, db, night="2017-12-19", plots=False)
    with db.session() as session:
        assert session.query(TransitFitRow).count() == 1
    db.dispose()


def test_run_lightcurves_without_targets_is_skipped(tmp_path: Path) -> None:
    settings = load_settings(None, overrides=[f"paths.output='{tmp_path}'"], environ={})
    db = open_database(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert run_lightcurves(settings, db).skipped == "no target configured"
    db.dispose()
