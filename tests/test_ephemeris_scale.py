"""The time standard of a target's published mid-transit time (issue 23): BJD_TDB, or BJD_UTC in
older papers; the O-C compares our BJD_TDB mid-time with the reference converted to BJD_TDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.time import Time

from nightpipe.config import TargetConfig, load_settings
from nightpipe.errors import ConfigError
from nightpipe.report.night_report import fit_summary_row
from nightpipe.timeseries.products import priors_from_target
from nightpipe.timeseries.simulate import TransitTruth, simulate_lightcurve
from nightpipe.timeseries.transit import FitOptions, fit_transit
from nightpipe.timeseries.transit.priors import t0_to_tdb

ROOT = Path(__file__).resolve().parents[1]
TRUTH = TransitTruth(rp_rs=0.15, noise=0.003)  # mid-transit 2017-12-20 (BJD_TDB)
T0 = TRUTH.tc - 1042 * TRUTH.period  # the same ephemeris 1042 orbits earlier, in 2011


def _astropy_shift_s(jd_utc: float) -> float:
    """TDB - UTC at ``jd_utc``, seconds, as astropy computes it."""
    utc = Time(jd_utc, format="jd", scale="utc")
    return float(((utc.tdb.jd1 - utc.jd1) + (utc.tdb.jd2 - utc.jd2)) * 86400.0)


def _target(scale: str) -> TargetConfig:
    return TargetConfig(
        name="SIM-1",
        period=TRUTH.period,
        t0_bjd=T0,
        t0_err=4.9e-5,
        t0_scale=scale,
        a_rs=5.344,
        inclination=88.98,
    )


def test_a_bjd_utc_reference_is_converted_to_bjd_tdb() -> None:
    shift = _astropy_shift_s(T0)
    assert shift == pytest.approx(34 + 32.184, abs=0.002)  # independent check: 34 leap seconds in 2011
    assert (t0_to_tdb(T0, "utc") - T0) * 86400.0 == pytest.approx(shift, abs=1e-4)
    assert _astropy_shift_s(2458107.7) == pytest.approx(37 + 32.184, abs=0.002)  # 69.184 s in 2017
    assert t0_to_tdb(T0, "tdb") == T0
    tdb, utc = priors_from_target(_target("tdb")), priors_from_target(_target("utc"))
    assert (tdb.t0, tdb.t0_scale, tdb.t0_published) == (T0, "tdb", None)
    assert utc.t0_published == T0 and utc.t0_scale == "utc"
    assert (utc.t0 - T0) * 86400.0 == pytest.approx(shift, abs=1e-4)
    # the predicted mid-time (epoch 1042, December 2017) moves by the shift at t0, not by 2017's 69.184 s
    pred_tdb, pred_utc = tdb.predicted_tc(TRUTH.tc), utc.predicted_tc(TRUTH.tc)
    assert pred_tdb is not None and pred_utc is not None
    assert (pred_utc[0] - pred_tdb[0]) * 86400.0 == pytest.approx(shift, abs=1e-4)
    assert pred_utc[1] == pred_tdb[1]
    # a t0 given on the command line is in the light curves' scale unless said otherwise
    assert priors_from_target(_target("utc"), t0=T0).t0 == T0
    assert priors_from_target(_target("tdb"), t0=T0, t0_scale="utc").t0 == utc.t0


def test_the_o_minus_c_uses_the_scale_and_the_summary_and_report_show_it() -> None:
    lc = simulate_lightcurve(TRUTH, seed=3)
    options = FitOptions(sampler="none", exptime_s=60.0)
    fits = {scale: fit_transit(lc, priors_from_target(_target(scale)), options) for scale in ("tdb", "utc")}
    oc = {scale: fit.o_minus_c_min for scale, fit in fits.items()}
    assert oc["tdb"] is not None and oc["utc"] is not None
    tc = {scale: fit.params["tc"].median for scale, fit in fits.items()}
    assert abs(tc["utc"] - tc["tdb"]) * 86400.0 < 0.5  # the same light curve gives the same mid-time
    # the published time 66.184 s later in BJD_TDB: the O-C is that much smaller
    moved_s = (oc["tdb"][0] - oc["utc"][0]) * 60.0
    assert moved_s == pytest.approx(_astropy_shift_s(T0), abs=0.5)
    assert oc["utc"][1] == pytest.approx(oc["tdb"][1], rel=1e-3)

    summary = {scale: fit.summary()["ephemeris"] for scale, fit in fits.items()}
    assert (summary["tdb"]["t0_scale"], summary["tdb"]["t0_published"]) == ("tdb", T0)
    assert summary["tdb"]["t0_shift_s"] == 0.0
    assert summary["utc"]["t0_scale"] == "utc" and summary["utc"]["t0_published"] == T0
    assert summary["utc"]["t0_shift_s"] == pytest.approx(_astropy_shift_s(T0), abs=1e-4)
    rows = {scale: fit_summary_row(fit.summary()) for scale, fit in fits.items()}
    assert rows["tdb"]["O-C reference t0"] == f"{T0:.6f} BJD_TDB"
    assert rows["utc"]["O-C reference t0"] == (
        f"{T0:.6f} BJD_UTC = {T0 + _astropy_shift_s(T0) / 86400:.6f} BJD_TDB (+66.2 s)"
    )


def test_the_scale_is_a_checked_setting_and_hatp32_states_its_own() -> None:
    assert TargetConfig(name="x").t0_scale == "tdb"
    with pytest.raises(ConfigError, match="t0_scale"):
        load_settings(None, overrides=['timeseries.targets=[{name="x", t0_scale="hjd"}]'], environ={})
    example = ROOT / "examples" / "hatp32.toml"
    assert 't0_scale = "tdb"' in example.read_text()  # said, not left to the default
    (hatp32,) = load_settings(example, environ={}).timeseries.targets
    assert (hatp32.t0_bjd, hatp32.t0_scale) == (2455867.402743, "tdb")
