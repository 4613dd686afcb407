"""``nightpipe lightcurve``: fit a light-curve CSV (any pipeline's), or build a night's light curves."""

from __future__ import annotations

from pathlib import Path

import typer

from nightpipe.cli.common import console, labelled, progress_for, state
from nightpipe.errors import ConfigError

TARGET_BLOCK = "[[timeseries.targets]]"  # printed as it is written in nightpipe.toml
lightcurve_app = typer.Typer(help="Differential light curves and transit fits.", no_args_is_help=True)


@lightcurve_app.command("fit")
def fit(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV/text/ECSV light curve, or EXOTIC's JSON"),
    target: str | None = typer.Option(None, "--target", help="Configured target whose parameters to use"),
    ra: float | None = typer.Option(None, "--ra", help="Target RA, degrees (for BJD_TDB and airmass)"),
    dec: float | None = typer.Option(None, "--dec", help="Target Dec, degrees (for BJD_TDB and airmass)"),
    time_col: str | None = typer.Option(None, "--time-col", help="Time column (JD, MJD, BJD...)"),
    flux_col: str | None = typer.Option(None, "--flux-col", help="Relative flux (or magnitude) column"),
    err_col: str | None = typer.Option(None, "--err-col", help="Flux error column"),
    period: float | None = typer.Option(None, "--period", help="Orbital period, days"),
    t0: float | None = typer.Option(
        None, "--t0", help="Reference mid-transit time (same scale as the times)"
    ),
    t0_scale: str | None = typer.Option(
        None, "--t0-scale", help="Time standard of --t0: tdb (BJD_TDB, default) or utc (BJD_UTC)"
    ),
    t0_err: float | None = typer.Option(None, "--t0-err", help="Error of t0, days"),
    rp_rs: float | None = typer.Option(None, "--rp-rs", help="Starting Rp/Rs"),
    a_rs: float | None = typer.Option(None, "--a-rs", help="a/Rs prior"),
    inc: float | None = typer.Option(None, "--inc", help="Inclination prior, degrees"),
    ecc: float | None = typer.Option(None, "--ecc", help="Eccentricity (fixed)"),
    omega: float | None = typer.Option(None, "--omega", help="Argument of periastron, degrees (fixed)"),
    u1: float | None = typer.Option(None, "--u1", help="Limb darkening u1 (with --u2)"),
    u2: float | None = typer.Option(None, "--u2", help="Limb darkening u2 (with --u1)"),
    ld_err: float | None = typer.Option(None, "--ld-err", help="Prior width on u1, u2 (else fixed)"),
    steps: int | None = typer.Option(None, "--steps", help="emcee steps per walker"),
    no_sampler: bool = typer.Option(False, "--no-sampler", help="Least squares only"),
    outdir: Path | None = typer.Option(None, "--out", "-o", help="Folder of the products"),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots"),
) -> None:
    """Detrend and fit a transit in any light-curve table; write CSV, JSON, AAVSO report and plots."""
    from nightpipe.report.night_report import reference_t0_text
    from nightpipe.timeseries.csvmode import fit_csv

    settings = state(ctx).settings
    priors: dict[str, object] = {
        "period": period,
        "t0": t0,
        "t0_scale": t0_scale,
        "t0_err": t0_err,
        "rp_rs": rp_rs,
        "a_rs": a_rs,
        "inc": inc,
        "ecc": ecc,
        "omega": omega,
        "u_err": ld_err,
    }
    if (u1 is None) != (u2 is None):
        raise typer.BadParameter("give both --u1 and --u2")
    if u1 is not None and u2 is not None:
        priors["u"] = (u1, u2)
    options = {"steps": steps, "sampler": "none" if no_sampler else None}
    if (ra is None) != (dec is None):
        raise typer.BadParameter("give both --ra and --dec")
    result, products = fit_csv(
        file,
        settings,
        outdir=outdir,
        target=target,
        time_col=time_col,
        flux_col=flux_col,
        err_col=err_col,
        priors=priors,
        options=options,
        plots=not no_plots,
        coords=None if ra is None or dec is None else (ra, dec),
    )
    out = console()
    s = result.summary()
    for name, p in s["params"].items():
        out.print(f"{name:>6} = {p['median']:.6f}  -{p['minus']:.6f} +{p['plus']:.6f}")
    eph = s["ephemeris"]
    if eph["o_minus_c_min"] is not None:
        reference = reference_t0_text(eph)
        against = f" (t0 {reference})" if reference else ""
        out.print(f"   O-C = {eph['o_minus_c_min']:+.2f} ± {eph['o_minus_c_err_min']:.2f} min{against}")
    out.print(f"detrending: {', '.join(s['detrend']['vectors']) or 'constant'} (chosen by BIC)")
    binned = s["binned"]
    out.print(
        f"residual rms {100 * s['rms']:.3f} % per point; {binned['minutes']:g}-min bins "
        f"{100 * (binned['rms'] or 0):.3f} % "
        f"(white noise would give {100 * (binned['white_noise_expected'] or 0):.3f} %)"
    )
    for kind, path in products.items():
        out.print(f"{kind}: {path}")


@lightcurve_app.command("build")
def build(
    ctx: typer.Context,
    night: str | None = typer.Option(None, "--night", help="YYYY-MM-DD (default: every night)"),
    target: list[str] = typer.Option([], "--target", help="Only this target (repeatable)"),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots"),
) -> None:
    """Build and fit the light curves of the configured targets from a night's source tables."""
    from nightpipe.cli.inputs import require_source_tables
    from nightpipe.store import open_database
    from nightpipe.timeseries.step import run_lightcurves

    settings = state(ctx).settings
    configured = [t.name for t in settings.timeseries.targets]
    if not configured or (target and not set(target) & set(configured)):
        raise ConfigError(
            "no target configured"
            if not configured
            else f"no configured target is named {', '.join(target)}",
            hint=f"add a {TARGET_BLOCK} block with name, ra, dec, and period, t0_bjd for a transit fit"
            + (f"; configured: {', '.join(configured)}" if configured else ""),
        )
    db = open_database(settings.database.url)
    try:
        require_source_tables(settings, db, night)
        summary = run_lightcurves(
            settings, db, night=night, targets=target, progress=progress_for(ctx), plots=not no_plots
        )
    finally:
        db.dispose()
    out = console()
    if summary.skipped:
        raise ConfigError(summary.skipped, hint=f"add a {TARGET_BLOCK} block with name, ra, dec")
    for t in summary.targets:
        line = f"{t['night']} {t['target']}: {t['n_points']}/{t['n_frames']} frames"
        line += f", aperture {t['aperture_px']:.2f} px" if t.get("aperture_px") else ""
        if t.get("aperture_fwhm_factor"):
            line += f" ({t['aperture_fwhm_factor']:g} x FWHM)"
        if "rp_rs" in t:
            line += f", Rp/Rs {t['rp_rs']:.4f} ± {t['rp_rs_err']:.4f}, rms {100 * t['rms']:.2f} %"
            if t.get("o_minus_c_min") is not None:
                line += f", O-C {t['o_minus_c_min']:+.1f} min"
        out.print(line)
    for name, reason in summary.failed:
        console(err=True).print(labelled("failed", "red", f"{name}: {reason}"))
    for stem, reason in summary.unreadable:
        console(err=True).print(f"unreadable {stem}: {reason}")
    if summary.failed and not summary.targets:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``lightcurve`` command group to the main app."""
    app.add_typer(lightcurve_app, name="lightcurve")
