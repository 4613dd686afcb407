"""Simulated nights for injection-recovery: one :class:`AccuracyNight` is a demo-field night with its
own seeing, airmass, extinction, drift, crowding, brightness, cadence, flip and transit timing, run
through the whole pipeline (:func:`run_accuracy_night`), and compared with its truth in units of
the reported errors (the pulls).

The field is the demo night's (real Tycho-2 stars round HAT-P-32's position, so that the frames
plate-solve offline); everything else comes from the case.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nightpipe.config import Settings, load_settings
from nightpipe.simulate.options import SimOptions
from nightpipe.simulate.settings_file import night_settings_lines

#: The parameters whose pulls a campaign reports.
PULL_PARAMS = ("rp_rs", "tc", "a_rs", "inc")
#: The tight priors' errors: a/Rs to 5 % (the fit's default width), the inclination to 0.5 deg.
A_RS_PRIOR_FRACTION = 0.05
INC_PRIOR_DEG = 0.5


@dataclass(frozen=True)
class AccuracyNight:
    """One simulated night of the campaign.

    ``fwhm_peak`` is the fractional rise of the seeing at mid-transit; ``t0_offset_h`` moves the
    transit from the middle of the series (a partial transit when it is larger than about half the
    series); ``a_rs``, ``impact`` (b) and ``u`` are the injected orbit and limb darkening;
    ``tight_priors`` gives the fit t0 (error 0.001 d), a/Rs (error 5 %) and the inclination
    (error 0.5 deg) as an observer copying them from the literature would: the catalogue values
    are the truth moved by ``catalogue_offsets`` (in units of those errors; a campaign draws
    them from N(0, 1), as a published value scatters about the truth by its error, so that the
    posterior's pulls are calibrated only if the fit is); ``exptime`` long enough clips the
    bright stars.
    """

    seed: int
    size: int = 320
    n_lights: int = 60
    cadence: float = 300.0
    exptime: float = 60.0
    fwhm_px: float = 3.2
    fwhm_variation: float = 0.12
    fwhm_peak: float = 0.0
    extinction: float = 0.2
    drift: tuple[float, float] = (18.0, -7.0)
    start_utc: str = "2017-12-20T02:00:00"
    density_scale: float = 1.0
    target_mag: float = 11.0
    rp: float = 0.15
    t0_offset_h: float = 0.0
    flip_at: int | None = None
    tight_priors: bool = False
    a_rs: float = 6.0
    impact: float = 0.115
    u: tuple[float, float] = (0.45, 0.2)
    catalogue_offsets: tuple[float, float] = (0.0, 0.0)

    @property
    def inc(self) -> float:
        """The injected inclination (degrees) of ``impact`` at ``a_rs``."""
        return math.degrees(math.acos(self.impact / self.a_rs))

    def catalogue(self) -> tuple[float, float, float, float]:
        """The tight priors' a/Rs, its error, inclination (at most 90) and its error."""
        a_err, inc_err = A_RS_PRIOR_FRACTION * self.a_rs, INC_PRIOR_DEG
        a = self.a_rs + self.catalogue_offsets[0] * a_err
        inc = min(90.0, self.inc + self.catalogue_offsets[1] * inc_err)
        return a, a_err, inc, inc_err

    def label(self) -> str:
        """A short name for tables."""
        return "-".join(f"{k}={v}" for k, v in asdict(self).items() if v != getattr(_DEFAULT, k))


_DEFAULT = AccuracyNight(seed=0)


def night_options(case: AccuracyNight, index_dirs: tuple[Path, ...]) -> SimOptions:
    """The simulator's options of ``case`` on the demo field."""
    from nightpipe.pipeline.demo import demo_options

    options = demo_options(
        index_dirs, seed=case.seed, size=case.size, n_lights=case.n_lights, flip_at=case.flip_at
    )
    scale = options.sky.pixel_scale
    return replace(
        options,
        target_mag=case.target_mag,
        density_scale=case.density_scale,
        site=replace(options.site, cadence=case.cadence, exptime=case.exptime, start_utc=case.start_utc),
        sky=replace(
            options.sky,
            fwhm=case.fwhm_px * scale,
            fwhm_variation=case.fwhm_variation,
            fwhm_peak=case.fwhm_peak,
            extinction=case.extinction,
            drift=case.drift,
        ),
        transit=replace(
            options.transit, rp=case.rp, t0_offset=case.t0_offset_h, a=case.a_rs, inc=case.inc, u=case.u
        ),
    )


def _settings_toml(outdir: Path, truth: dict[str, Any], case: AccuracyNight, steps: int) -> str:
    """The night's settings: the demo night's, with the case's priors."""
    field, transit = truth["field"], truth["transit"]
    site, stars = field["site"], field["stars"]
    target = int(field["target_index"])
    camera = truth.get("camera", {})
    lines = [
        *night_settings_lines(outdir, site, camera),
        "[timeseries]",
        "walkers = 32",
        f"steps = {steps}",
        "[[timeseries.targets]]",
        'name = "SIM-T"',
        f"ra = {float(stars['ra'][target])}",
        f"dec = {float(stars['dec'][target])}",
        f"period = {transit['period']}",
        f"t0_bjd = {transit['t0_bjd_tdb']}",
    ]
    if case.tight_priors:
        a, a_err, inc, inc_err = case.catalogue()
        lines += [
            "t0_err = 0.001",
            f"a_rs = {a}",
            f"a_rs_err = {a_err}",
            f"inclination = {inc}",
            f"inclination_err = {inc_err}",
        ]
    return "\n".join(lines) + "\n"


def prepare_night(case: AccuracyNight, outdir: Path, *, steps: int = 600) -> tuple[Settings, Path]:
    """Simulate ``case`` into ``outdir/raw`` (once) and write its settings (``steps`` emcee steps
    of 32 walkers: errors from the posterior, as the pipeline reports them)."""
    from nightpipe.simulate.night import simulate_night

    outdir = outdir.resolve()
    raw = outdir / "raw"
    base = load_settings(None, environ={})
    if not (raw / "truth.json").is_file():
        simulate_night(raw, night_options(case, base.astrometry.index_dirs))
    truth = json.loads((raw / "truth.json").read_text())
    config = outdir / "nightpipe.toml"
    config.write_text(_settings_toml(outdir, truth, case, steps), encoding="utf-8")
    return load_settings(config, environ={}), raw


def quantile_pull(true: float, z: list[float], quantiles: list[float]) -> float:
    """The pull of ``true`` against a posterior given by its quantiles at the normal scores ``z``:
    ``Phi^-1(1 - CDF(true))`` (positive when the posterior lies above the truth), the CDF
    interpolated between the quantiles, as simulation-based calibration places a truth in its
    posterior; it stays right where the posterior is one-sided (an inclination against 90 deg).
    Beyond the listed quantiles (a truth outside ``z[0]..z[-1]`` sigma) the pull goes on
    linearly in units of the posterior's own 1-sigma half-width on that side, so a truth far
    outside still counts as far.

    >>> zs = [-2.0, -1.0, 0.0, 1.0, 2.0]
    >>> quantile_pull(9.0, zs, [8.0, 9.0, 10.0, 11.0, 12.0]), quantile_pull(16.0, zs, [8, 9, 10, 11, 12])
    (1.0, -6.0)
    """
    zs = np.asarray(z, dtype=float)
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=float))
    median = float(np.interp(0.0, zs, q))
    if true < q[0]:
        sigma = max(median - float(np.interp(-1.0, zs, q)), 1e-300)
        return float(-(zs[0] - (q[0] - true) / sigma))
    if true > q[-1]:
        sigma = max(float(np.interp(1.0, zs, q)) - median, 1e-300)
        return float(-(zs[-1] + (true - q[-1]) / sigma))
    # interpolate z in the quantiles (ties: the middle of their z range)
    lo = np.interp(true, q, zs, left=zs[0], right=zs[-1])
    hi = -np.interp(-true, -q[::-1], -zs[::-1])
    return float(-0.5 * (lo + hi))


def truth_values(truth: dict[str, Any]) -> dict[str, float]:
    """The injected values of the pulled parameters, in the fit's units (tc in BJD_TDB, as the
    simulator computes its mid-exposure times and the pipeline reports them)."""
    tr = truth["transit"]
    return {"rp_rs": tr["rp"], "tc": tr["t0_bjd_tdb"], "a_rs": tr["a"], "inc": tr["inc"]}


def pulls(fit: dict[str, Any], truth: dict[str, Any]) -> dict[str, float]:
    """The pull of each fitted parameter: from the posterior's quantiles (:func:`quantile_pull`)
    when the fit lists them, else ``(fitted - true) / error`` with the error on the side of the
    truth."""
    true = truth_values(truth)
    quant = fit.get("posterior_quantiles") or {}
    out: dict[str, float] = {}
    for name in PULL_PARAMS:
        p = fit["params"].get(name)
        if p is None:
            continue
        if name in quant:
            out[name] = quantile_pull(float(true[name]), quant["z"], quant[name])
            continue
        delta = float(p["median"]) - float(true[name])
        err = float(p["minus"] if delta > 0 else p["plus"])
        out[name] = delta / err if err > 0 else math.nan
    return out


def sided_pulls(fit: dict[str, Any], truth: dict[str, Any]) -> dict[str, float]:
    """``(median - true) / error`` with the 68 % half-width on the truth's side (the old pulls,
    kept in the campaign's rows to compare)."""
    true = truth_values(truth)
    out: dict[str, float] = {}
    for name in PULL_PARAMS:
        p = fit["params"].get(name)
        if p is not None:
            delta = float(p["median"]) - float(true[name])
            err = float(p["minus"] if delta > 0 else p["plus"])
            out[name] = delta / err if err > 0 else math.nan
    return out


def run_accuracy_night(case: AccuracyNight, outdir: Path, *, steps: int = 600) -> dict[str, Any]:
    """Simulate ``case``, run the whole pipeline on it and compare the fit with the truth.

    Returns the case, the fitted parameters, the pulls, the light curve's scatter against its
    photon-noise expectation (``rms`` / median error of the input light curve) and the red-noise
    factor; ``error`` instead when the night failed.
    """
    from nightpipe.pipeline.night import run_night

    settings, raw = prepare_night(case, outdir, steps=steps)
    result = run_night(settings, [raw])
    fits = sorted(settings.paths.output.glob("lightcurves/*/*_fit.json"))
    out: dict[str, Any] = {"case": asdict(case)}
    out["exit_code"] = result.exit_code  # 1 when some frames failed (a frame that did not solve)
    if not fits:
        out["error"] = "; ".join(str(s.error) for s in result.steps if s.error) or "no fit"
        return out
    fit = json.loads(fits[0].read_text())
    truth = json.loads((raw / "truth.json").read_text())
    out["params"] = fit["params"]
    out["pulls"] = pulls(fit, truth)
    out["sided_pulls"] = sided_pulls(fit, truth)
    out["rms"] = fit["rms"]
    csv_path = fits[0].with_name(fits[0].name.replace("_fit.json", ".csv"))
    out["photon_rms"] = _photon_rms(csv_path)
    out["coverage"] = transit_coverage(_times(csv_path), truth, case.cadence)
    out["red_noise_beta"] = fit.get("red_noise_beta")
    out["chi2_red"] = fit.get("chi2_red")
    out["n_used"] = fit.get("n_used")
    return out


def transit_coverage(times: np.ndarray, truth: dict[str, Any], cadence_s: float) -> float:
    """The fraction of the injected transit (first to fourth contact) that the light curve's
    points cover: the points inside it over the number the cadence would put there (at most 1).
    A night whose usable frames miss its transit (the target's aperture on masked pixels, say)
    cannot measure it: the campaign reports its pulls apart.

    >>> tr = {"transit": {"t0_bjd_tdb": 0.0, "period": 2.0, "rp": 0.1, "a": 6.0, "inc": 90.0}}
    >>> round(transit_coverage(np.arange(-0.2, 0.0, 300 / 86400), tr, 300.0), 2)
    0.5
    """
    tr = truth["transit"]
    rp, a, inc = float(tr["rp"]), float(tr["a"]), math.radians(float(tr["inc"]))
    b = a * math.cos(inc)
    arg = math.sqrt(max((1 + rp) ** 2 - b**2, 0.0)) / (a * math.sin(inc))
    t14 = float(tr["period"]) / math.pi * math.asin(min(arg, 1.0))
    if t14 <= 0:
        return 0.0
    t = np.asarray(times, dtype=float) - float(tr["t0_bjd_tdb"])
    inside = int(np.sum(np.abs(t) <= t14 / 2))
    return min(1.0, inside / (t14 * 86400.0 / cadence_s))


def _times(csv_path: Path) -> np.ndarray:
    """The light curve's BJD_TDB column."""
    from astropy.table import Table

    table = Table.read(csv_path, format="ascii.csv", comment="#")
    return np.asarray(table["BJD_TDB"], dtype=float)


def rescore(row: dict[str, Any], night_dir: Path) -> dict[str, Any]:
    """``row`` with its pulls recomputed from the night's fit and truth files (the current
    :func:`pulls`) and its transit coverage; unchanged when the night has no fit."""
    fits = sorted(night_dir.glob("out/lightcurves/*/*_fit.json"))
    truth_path = night_dir / "raw" / "truth.json"
    if "error" in row or not fits or not truth_path.is_file():
        return row
    fit = json.loads(fits[0].read_text())
    truth = json.loads(truth_path.read_text())
    csv_path = fits[0].with_name(fits[0].name.replace("_fit.json", ".csv"))
    cadence = float(row["case"].get("cadence", 300.0))
    return {
        **row,
        "pulls": pulls(fit, truth),
        "sided_pulls": sided_pulls(fit, truth),
        "coverage": transit_coverage(_times(csv_path), truth, cadence),
    }


def _photon_rms(csv_path: Path) -> float:
    """The median of the light curve's own (photon, sky and read noise) errors."""
    from astropy.table import Table

    table = Table.read(csv_path, format="ascii.csv", comment="#")
    name = next((c for c in ("rel_flux_err_T1", "flux_err") if c in table.colnames), None)
    if name is None:
        return math.nan
    values = np.asarray(table[name], dtype=float)
    return float(np.nanmedian(values[values > 0]))


def pull_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per parameter: nights, mean pull, pull width (std), nights beyond 4 sigma; and the scatter
    ratio (rms over the photon-noise expectation) as ``scatter``."""
    table: dict[str, dict[str, float]] = {}
    ok = [r for r in rows if "pulls" in r]
    for name in PULL_PARAMS:
        p = np.array([r["pulls"][name] for r in ok if name in r["pulls"]], dtype=float)
        p = p[np.isfinite(p)]
        if p.size:
            table[name] = {
                "nights": int(p.size),
                "mean_pull": float(p.mean()),
                "pull_width": float(p.std(ddof=1)) if p.size > 1 else math.nan,
                "beyond_4_sigma": int(np.sum(np.abs(p) > 4)),
            }
    ratio = np.array([r["rms"] / r["photon_rms"] for r in ok if r.get("photon_rms")], dtype=float)
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size:
        table["scatter"] = {
            "nights": int(ratio.size),
            "median_ratio": float(np.median(ratio)),
            "max_ratio": float(ratio.max()),
        }
    return table
