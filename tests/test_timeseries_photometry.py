"""Cross-matching, comparison choice, differential photometry and the light curve of a synthetic night."""

from __future__ import annotations

import numpy as np
import pytest

from nightpipe.errors import TimeseriesError
from nightpipe.frames.flags import PixelFlag
from nightpipe.timeseries.assemble import TargetSpec, build_lightcurve
from nightpipe.timeseries.comparisons import broeg_weights, choose_comparisons, ensemble_ratios
from nightpipe.timeseries.differential import (
    choose_aperture,
    out_of_transit,
    relative_flux,
    running_median_outliers,
)
from nightpipe.timeseries.simulate import TransitTruth, simulate_source_tables
from nightpipe.timeseries.star_identity import crossmatch, pixel_offset, pixel_scale_arcsec
from nightpipe.timeseries.transit import FitOptions, fit_transit


@pytest.fixture(scope="module")
def night() -> tuple[list, object]:
    return simulate_source_tables(TransitTruth(), n_frames=120, seed=4)


def _truth_rows(tables: list, field, star: int) -> list[int]:
    """Row of ``star`` in each frame, from the table ids (independent of the matcher)."""
    return [
        int(np.flatnonzero(np.asarray(t["id"]) == star + 1)[0]) if star + 1 in t["id"] else -1 for t in tables
    ]


@pytest.mark.parametrize("with_wcs", [True, False])
def test_crossmatch_follows_a_270_px_drift(with_wcs: bool) -> None:
    tables, _ = simulate_source_tables(TransitTruth(), n_frames=30, seed=5, with_wcs=with_wcs)
    matrix = crossmatch(tables)
    assert set(matrix.method) == {"sky" if with_wcs else "pixel"}
    ref_ids = np.asarray(tables[matrix.ref_frame]["id"])
    # every star found in a frame is the same star (by its true id) as in the reference
    checked = 0
    for f, table in enumerate(tables):
        rows = matrix.index[f]
        ok = rows >= 0
        np.testing.assert_array_equal(
            np.asarray(table["id"])[rows[ok]],
            ref_ids[np.argsort(-np.asarray(tables[matrix.ref_frame]["aper_flux"])[:, 1], kind="stable")][ok],
        )
        checked += ok.sum()
    assert checked > 0.7 * len(tables) * matrix.n_stars
    assert abs(np.nanmax(matrix.offsets[:, 0]) - np.nanmin(matrix.offsets[:, 0]) - 270 * 29 / 29) < 2


@pytest.mark.parametrize("with_wcs", [True, False])
def test_crossmatch_follows_a_turning_field_and_a_flip(with_wcs: bool) -> None:
    n = 40
    tables, _ = simulate_source_tables(
        TransitTruth(), n_frames=n, seed=6, drift_px=60.0, rotation_deg=50.0, flip_at=30, with_wcs=with_wcs
    )
    matrix = crossmatch(tables)
    assert set(matrix.method) == {"sky" if with_wcs else "pixel"}
    ref = matrix.ref_frame
    ref_ids = np.asarray(tables[ref]["id"])[
        np.argsort(-np.asarray(tables[ref]["aper_flux"])[:, 1], kind="stable")
    ]
    for f, table in enumerate(tables):
        ok = matrix.index[f] >= 0
        assert ok.sum() >= 10
        np.testing.assert_array_equal(np.asarray(table["id"])[matrix.index[f][ok]], ref_ids[ok])
    # the field's own angle, 50 degrees over the night plus 180 from frame 30 on
    angle = 50.0 * np.arange(n) / (n - 1) + 180.0 * (np.arange(n) >= 30)
    expected = np.mod(angle[ref] - angle + 180.0, 360.0) - 180.0
    turned = np.mod(matrix.rotation_deg() - expected + 180.0, 360.0) - 180.0
    assert np.max(np.abs(turned)) < 0.1
    assert not matrix.mirrored().any()


def test_pixel_offset_votes() -> None:
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 500, (30, 2))
    frame = ref + np.array([150.3, -20.7])
    frame = np.vstack([frame[:25], rng.uniform(0, 500, (10, 2))])  # 5 lost, 10 new sources
    dx, dy = pixel_offset(ref, frame)  # type: ignore[misc]
    assert dx == pytest.approx(150.3, abs=0.01) and dy == pytest.approx(-20.7, abs=0.01)
    assert pixel_offset(ref[:2], frame[:2]) is None


def test_pixel_scale_measured_from_table(night: tuple) -> None:
    tables, _ = night
    assert pixel_scale_arcsec(tables[0]) == pytest.approx(5.2, rel=0.01)


def test_broeg_weights_follow_noise() -> None:
    rng = np.random.default_rng(2)
    noise = np.repeat([0.002, 0.004, 0.008], 4)
    flux = 1e4 * (1 + rng.normal(0, noise, (400, 12)))
    weights, sigma = broeg_weights(flux)
    assert weights.sum() == pytest.approx(1.0)
    # weights go as 1/sigma^2 of each star's own noise (the ensemble's noise adds a little)
    assert weights[0] / weights[4] == pytest.approx(4, rel=0.3)
    assert weights[0] / weights[8] == pytest.approx(16, rel=0.3)
    assert sigma[8] == pytest.approx(0.008, rel=0.15)


def test_comparison_rules_and_leave_one_out() -> None:
    rng = np.random.default_rng(3)
    F, S = 200, 11
    base = np.array([1e5, 9e4, 1.1e5, 8e4, 1.2e5, 1e5, 5e2, 1e5, 9e4, 1.1e5, 1e5])  # 6: 7.5 mag fainter
    trend = 1 - 0.1 * np.linspace(0, 1, F)[:, None]  # extinction, common to all
    flux = base * trend * (1 + rng.normal(0, 0.002, (F, S)))
    flux[:, 1] *= 1 + 0.05 * np.sin(np.linspace(0, 6, F))  # a variable
    flux[:20, 2] = np.nan  # missing in 10 % of frames
    flags = np.zeros((F, S), dtype=np.int64)
    flags[:, 3] = int(PixelFlag.SATURATED)
    x = np.full((F, S), 100.0) + np.arange(S) * 50
    y = np.full((F, S), 100.0)
    x[:, 5] = x[:, 4] + 3.0  # 5 sits next to 4: both crowded
    vetoed = np.zeros(S, dtype=bool)
    vetoed[7] = True
    choice = choose_comparisons(flux, 0, flags=flags, x=x, y=y, shape=(400, 700), fwhm=2.0, vetoed=vetoed)
    by_star = {c.star: c for c in choice.candidates}
    assert "found in only 90 % of frames" in by_star[2].reasons
    assert any("saturated" in r for r in by_star[3].reasons)
    assert any("neighbour" in r for r in by_star[4].reasons) and any(
        "neighbour" in r for r in by_star[5].reasons
    )
    assert any("mag from the target" in r for r in by_star[6].reasons)
    assert by_star[7].reasons == ("known variable (VSX)",)
    assert any("variable or noisy" in r for r in by_star[1].reasons)
    assert not by_star[1].used
    assert choice.stars.tolist() == sorted(choice.stars.tolist(), key=lambda s: -by_star[s].score)
    assert set(choice.stars.tolist()) == {8, 9, 10}
    assert len(choice.report()) == S - 1
    # the identify step says which variable a vetoed star is
    named = choose_comparisons(flux, 0, flags=flags, x=x, y=y, shape=(400, 700), fwhm=2.0, vetoed=vetoed,
                               veto_labels={7: "VSX EY UMa (RRAB/BL)"})  # fmt: skip
    assert {c.star: c for c in named.candidates}[7].reasons == ("known variable (VSX EY UMa (RRAB/BL))",)
    # a manual list overrides (and still weights)
    manual = choose_comparisons(flux, 0, manual=[1, 7])
    assert manual.manual and manual.stars.tolist() == [1, 7]
    # leave-one-out: the variable star's own curve against the others shows its variation
    loo = manual.leave_one_out
    assert np.nanstd(loo[:, 0]) > 0.02 and loo.shape == (F, 2)
    with pytest.raises(TimeseriesError, match="no usable comparison"):
        choose_comparisons(flux[:, [0, 6]], 0)


def test_neighbour_rule_holds_when_the_field_turns() -> None:
    rng = np.random.default_rng(11)
    F, S = 120, 30
    flux = 1e5 * (1 + rng.normal(0, 0.002, (F, S)))
    ref = np.column_stack([rng.uniform(50, 600, S), rng.uniform(50, 450, S)])
    ref[5] = ref[4] + [3.0, 0.0]  # 4 and 5 are a close pair
    x = np.repeat(ref[None, :, 0], F, axis=0)
    y = np.repeat(ref[None, :, 1], F, axis=0)
    x[60:], y[60:] = 649.0 - x[60:], 499.0 - y[60:]  # a meridian flip half way
    choice = choose_comparisons(
        flux, 0, x=x, y=y, shape=(500, 650), positions=ref, fwhm=2.0, max_comparisons=S
    )
    crowded = {c.star for c in choice.candidates if any("neighbour" in r for r in c.reasons)}
    true_pairs = {s for s in range(S) if np.sort(np.hypot(*(ref - ref[s]).T))[1] < 5.0}
    assert crowded == true_pairs and {4, 5} <= crowded
    # without them, the median position over a night flipped half way is the centre for every star
    with pytest.raises(TimeseriesError, match="neighbour"):
        choose_comparisons(flux, 0, x=x, y=y, shape=(500, 650), fwhm=2.0, max_comparisons=S)


def test_ensemble_ratios_of_identical_stars_are_flat() -> None:
    flux = np.outer(np.linspace(1, 2, 10), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(ensemble_ratios(flux, np.ones(3)), 1.0)


def test_relative_flux_and_errors() -> None:
    # two frames, two apertures; comparisons 50 and 150 (then 55 and 165: 10 % more light)
    target = np.array([[100.0, 200.0], [110.0, 220.0]])
    comps = np.array([[[50.0, 100.0], [150.0, 300.0]], [[55.0, 110.0], [165.0, 330.0]]])
    comps_err = np.zeros_like(comps)
    comps_err[:, 0, :] = 5.0
    rel, err = relative_flux(target, np.zeros_like(target), comps, comps_err, np.array([1.0, 1.0]))
    np.testing.assert_allclose(rel[0] / rel[1], [1.0, 1.0])  # the common change cancels
    # ensemble error: half of star 1's relative error in frame 0 (5/50 and 5/100); the target has none
    np.testing.assert_allclose(err[0] / rel[0], [0.5 * 5 / 50, 0.5 * 5 / 100])
    # a star missing in a frame: the frame is kept with the other star (weight 0.5 >= 0.5)
    comps[1, 0, :] = np.nan
    rel2, _ = relative_flux(target, np.zeros_like(target), comps, comps_err, np.array([1.0, 1.0]))
    assert np.all(np.isfinite(rel2))
    np.testing.assert_allclose(rel2[1], target[1] / (comps[1, 1] / np.array([157.5, 315.0])))
    # too little weight present: NaN
    rel3, _ = relative_flux(target, np.zeros_like(target), comps, comps_err, np.array([3.0, 1.0]))
    assert np.all(np.isnan(rel3[1])) and np.all(np.isfinite(rel3[0]))


def test_aperture_with_lowest_scatter_out_of_transit() -> None:
    rng = np.random.default_rng(4)
    time = np.linspace(0, 0.3, 150)
    transit = 1 - 0.02 * (np.abs(time - 0.15) < 0.05)
    rel = transit[:, None] * (1 + rng.normal(0, [0.006, 0.003, 0.004], (150, 3)))
    oot = out_of_transit(time, 0.15, 0.1)
    choice = choose_aperture(time, rel, (2.0, 3.0, 4.0), oot)
    assert choice.index == 1
    assert choice.scatter[1] == pytest.approx(0.003, rel=0.2)


def test_running_median_outliers() -> None:
    rng = np.random.default_rng(5)
    flux = 1 + rng.normal(0, 0.001, 100)
    flux[[10, 50]] += [0.02, -0.03]
    flux[70] = np.nan
    bad = running_median_outliers(flux, sigma=4)
    assert set(np.flatnonzero(bad)) == {10, 50, 70}


def test_light_curve_of_a_synthetic_night(night: tuple) -> None:
    tables, field = night
    truth = TransitTruth()
    built = build_lightcurve(
        tables, TargetSpec("SIM-1", float(field.ra[0]), float(field.dec[0])), priors=truth.priors()
    )
    lc = built.lc
    # the target is the true star 0, found through its coordinates
    target_rows = _truth_rows(tables, field, 0)
    assert all(r >= 0 for r in target_rows)
    assert built.matrix.find(float(field.ra[0]), float(field.dec[0])) == built.target_star
    # never the variable or the saturated star
    for star in (field.variable, field.saturated):
        assert built.matrix.find(float(field.ra[star]), float(field.dec[star])) not in built.comparisons.stars
    assert lc.aperture_flux is not None and lc.aperture_flux.shape[1] == 3
    assert lc.meta["aperture_px"] in (3.0, 5.0, 7.0) and len(lc.meta["aperture_scatter"]) == 3
    assert set(lc.aux) >= {"airmass", "fwhm", "sky", "x", "y"}
    assert np.ptp(lc.aux["x"]) > 250  # the drift is followed
    fit = fit_transit(lc, truth.priors(), FitOptions(walkers=16, steps=300, seed=2, exptime_s=60))
    rp, tc = fit.params["rp_rs"], fit.params["tc"]
    assert abs(rp.median - truth.rp_rs) < 2.5 * rp.err
    assert abs(tc.median - truth.tc) < 2.5 * tc.err
    expected = float(np.median(lc.flux_err))  # noise propagated from the injected photon + sky noise
    assert abs(fit.rms / expected - 1) < 0.15


def test_target_not_found_is_a_clear_error(night: tuple) -> None:
    tables, _ = night
    with pytest.raises(TimeseriesError, match="not found"):
        build_lightcurve(tables, TargetSpec("nowhere", 120.0, -30.0))


def test_comparison_count_chosen_by_target_scatter() -> None:
    from nightpipe.timeseries.assemble import comparison_count_scatter

    rng = np.random.default_rng(8)
    F, S = 150, 13
    time = np.linspace(0, 0.3, F)
    flux = 1e4 * (1 + rng.normal(0, 0.004, (F, S)))  # every star: 0.4 % white noise
    choice = choose_comparisons(flux, 0, max_comparisons=12)
    oot = np.ones(F, dtype=bool)
    scatter = comparison_count_scatter(flux, flux * 0.004, 0, choice, time, oot)
    assert list(scatter) == [3, 5, 8, 10, 12]
    # the target's scatter falls towards its own noise as the ensemble grows: sqrt(1 + 1/K) x 0.4 %
    assert scatter[3] == pytest.approx(0.004 * np.sqrt(1 + 1 / 3), rel=0.15)
    assert scatter[12] == pytest.approx(0.004 * np.sqrt(1 + 1 / 12), rel=0.15)
    assert scatter[12] < scatter[3]


def test_meridian_flip_is_followed_and_detrended() -> None:
    truth = TransitTruth()
    tables, field = simulate_source_tables(
        truth, n_frames=120, drift_px=60.0, flip_at=75, flip_offset=0.01, seed=9
    )
    built = build_lightcurve(
        tables, TargetSpec("SIM-1", float(field.ra[0]), float(field.dec[0])), priors=truth.priors()
    )
    lc = built.lc
    assert len(lc) >= 115  # the target is followed through the flip by its coordinates
    assert lc.meta["flip_index"] == 75  # found from the field's rotation, not the target's pixels
    fit = fit_transit(lc, truth.priors(), FitOptions(sampler="none", exptime_s=60))
    assert "flip" in fit.detrend_vectors
    rp, tc = fit.params["rp_rs"], fit.params["tc"]
    assert abs(rp.median - truth.rp_rs) < 3 * rp.err
    assert abs(tc.median - truth.tc) < 3 * tc.err
    # the step is decisive against no detrending (a centroid jump at the flip can mimic it too)
    bic = {h.vectors: h.bic for h in fit.bic_history}
    assert bic[()] - bic[("flip",)] > 50


def test_a_turning_field_gives_the_light_curve_of_a_still_one() -> None:
    truth = TransitTruth()
    fits = {}
    for rotation in (0.0, 60.0):
        tables, field = simulate_source_tables(
            truth, n_frames=120, drift_px=60.0, rotation_deg=rotation, seed=9
        )
        built = build_lightcurve(
            tables, TargetSpec("SIM-1", float(field.ra[0]), float(field.dec[0])), priors=truth.priors()
        )
        assert built.lc.meta["flip_index"] is None  # a slow turn is not a flip
        fits[rotation] = fit_transit(built.lc, truth.priors(), FitOptions(sampler="none", exptime_s=60))
    still, turning = fits[0.0], fits[60.0]
    assert len(turning.lc) >= len(still.lc) - 2
    assert turning.rms <= 1.1 * still.rms
    rp = turning.params["rp_rs"]
    assert abs(rp.median - truth.rp_rs) < 3 * rp.err


def test_reference_frame_has_a_wcs_when_some_frames_lack_one() -> None:
    tables, field = simulate_source_tables(TransitTruth(), n_frames=20, seed=5)
    for t in tables[:15]:  # most frames unsolved, the middle ones included
        t["ra"] = np.nan
        t["dec"] = np.nan
    matrix = crossmatch(tables)
    assert matrix.ref_frame >= 15
    assert matrix.method.count("pixel") == 15 and matrix.method.count("sky") == 5
    assert matrix.find(float(field.ra[0]), float(field.dec[0])) is not None


def test_a_night_too_short_to_compare_comparison_counts_keeps_its_comparisons() -> None:
    """Eight frames: no count of comparison stars can be scored on 10 out-of-transit points, so the
    choice stays as it is (this used to fail with 'min() arg is an empty sequence')."""
    truth = TransitTruth()
    tables, field = simulate_source_tables(truth, n_frames=8, seed=8)
    built = build_lightcurve(
        tables, TargetSpec("SIM-1", float(field.ra[0]), float(field.dec[0])), priors=truth.priors()
    )
    assert len(built.lc) == 8 and built.comparisons.stars.size > 3


def test_a_frame_whose_target_aperture_has_no_data_is_dropped_with_why() -> None:
    """A NaN patch over the target (raw pixels without data) must not enter the light curve, even
    when the flux it leaves looks ordinary next to the neighbouring frames."""
    truth = TransitTruth()
    tables, field = simulate_source_tables(truth, n_frames=40, seed=9)
    spec = TargetSpec("SIM-1", float(field.ra[0]), float(field.dec[0]))
    clean = build_lightcurve(tables, spec, priors=truth.priors())
    hit = tables[17]
    row = int(np.flatnonzero(np.asarray(hit["id"]) == 1)[0])  # the target is star 0, id 1
    hit["flags"][row] |= int(PixelFlag.NO_DATA)
    built = build_lightcurve(tables, spec, priors=truth.priors())
    assert len(built.lc) == len(clean.lc) - 1
    reasons = dict(built.dropped)
    assert (
        reasons[str(hit.meta["frame"])]
        == "the target's aperture covers pixels without data (NaN in the frame)"
    )
