"""``nightpipe simulate``: write a synthetic raw night with a truth file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightpipe.cli.common import console, progress_for, state
from nightpipe.errors import ConfigError
from nightpipe.simulate.dialects import DIALECTS

if TYPE_CHECKING:
    from nightpipe.simulate.options import SimOptions


def _options(
    *,
    seed: int,
    dialect: str,
    size: int,
    binning: int,
    overscan: int,
    adc_bits: int,
    lights: int,
    exptime: float,
    cadence: float,
    start: str | None,
    ra: float | None,
    dec: float | None,
    object_name: str,
    filter_name: str,
    n_bias: int,
    n_dark: int,
    dark_exptimes: list[float],
    n_flat: int,
    flat_filters: list[str],
    dome_flats: bool,
    psf: str,
    fwhm: float,
    pixel_scale: float,
    cosmic_rate: float,
    field_rotation: float,
    flip_at: int | None,
    seeing_peak: float,
    transit: bool,
    variable: bool,
    moving: bool,
    wcs: bool,
    junk: bool,
    latitude: float,
    longitude: float,
    elevation: float,
    site_name: str,
    gain: float | None = None,
    gain_setting: int | None = None,
    offset_setting: int | None = None,
    egain: bool = True,
    movers: list[str] | None = None,
) -> SimOptions:
    if psf not in ("moffat", "gaussian"):
        raise ConfigError(f"--psf {psf!r} is not moffat or gaussian")
    if dialect not in DIALECTS:
        raise ConfigError(f"--dialect {dialect!r} is not one of {', '.join(DIALECTS)}")
    from nightpipe.simulate.movers import MoverSpec
    from nightpipe.simulate.options import SimOptions

    base = SimOptions()
    site = replace(
        base.site,
        n_lights=lights,
        exptime=exptime,
        cadence=cadence,
        object_name=object_name,
        filter=filter_name,
        latitude=latitude,
        longitude=longitude,
        elevation=elevation,
        name=site_name,
    )
    if start is not None:
        site = replace(site, start_utc=start)
    if ra is not None:
        site = replace(site, ra=ra)
    if dec is not None:
        site = replace(site, dec=dec)
    return replace(
        base,
        seed=seed,
        dialect=dialect,  # type: ignore[arg-type]
        write_wcs=wcs,
        camera=replace(
            base.camera,
            size=size,
            binning=binning,
            overscan=overscan,
            adc_bits=adc_bits,
            gain=gain if gain is not None else base.camera.gain,
            gain_setting=gain_setting if gain_setting is not None else base.camera.gain_setting,
            offset_setting=offset_setting if offset_setting is not None else base.camera.offset_setting,
            header_egain=egain,
        ),
        calibration=replace(
            base.calibration,
            n_bias=n_bias,
            n_dark=n_dark,
            dark_exptimes=tuple(dark_exptimes) or base.calibration.dark_exptimes,
            n_flat=n_flat,
            flat_filters=tuple(dict.fromkeys((filter_name, *flat_filters))),
            flat_kind="dome" if dome_flats else "twilight",
        ),
        site=site,
        sky=replace(
            base.sky,
            psf=psf,  # type: ignore[arg-type]
            fwhm=fwhm,
            pixel_scale=pixel_scale,
            cosmic_rate=cosmic_rate,
            field_rotation=field_rotation,
            flip_at=flip_at,
            fwhm_peak=seeing_peak,
        ),
        transit=replace(base.transit, enabled=transit),
        variable_comparison=variable,
        moving_object=moving,
        movers=tuple(MoverSpec.parse(m) for m in movers or ()),
        junk_files=junk,
    )


def simulate(
    ctx: typer.Context,
    outdir: Path = typer.Argument(..., help="Folder for the raw frames and truth.json"),
    size: int = typer.Option(1024, help="Frame width and height, binned pixels"),
    lights: int = typer.Option(60, help="Number of light frames"),
    dialect: str = typer.Option("maxim", help=f"Header dialect: {', '.join(DIALECTS)}"),
    seed: int = typer.Option(1, help="Random seed (same seed, same night)"),
    binning: int = typer.Option(1, help="On-chip binning"),
    overscan: int = typer.Option(0, help="Width of an overscan strip (0: none)"),
    adc_bits: int = typer.Option(16, help="ADC depth (12 for MicroObservatory-like cameras)"),
    exptime: float = typer.Option(60.0, help="Exposure time of the lights, s"),
    cadence: float = typer.Option(300.0, help="Time between light starts, s"),
    start: str | None = typer.Option(None, help="UTC start of the first light (ISO)"),
    ra: float | None = typer.Option(None, help="Pointing RA, degrees"),
    dec: float | None = typer.Option(None, help="Pointing Dec, degrees"),
    object_name: str = typer.Option("SIM-1", "--object", help="OBJECT of the lights"),
    filter_name: str = typer.Option("V", "--filter", help="Filter of the lights (and flats)"),
    n_bias: int = typer.Option(10, "--bias", help="Bias frames"),
    n_dark: int = typer.Option(5, "--darks", help="Darks per exposure time"),
    dark_exptimes: list[float] = typer.Option([], "--dark-exptime", help="Dark exposure times (repeat)"),
    n_flat: int = typer.Option(10, "--flats", help="Flats per filter"),
    flat_filters: list[str] = typer.Option([], "--flat-filter", help="More filters with flats (repeat)"),
    dome_flats: bool = typer.Option(False, "--dome-flats", help="Dome flats instead of twilight flats"),
    psf: str = typer.Option("moffat", help="PSF: moffat or gaussian"),
    fwhm: float = typer.Option(3.5, help="Median seeing at zenith, arcsec"),
    pixel_scale: float = typer.Option(1.5, help="Unbinned pixel scale, arcsec/px"),
    cosmic_rate: float = typer.Option(2.0, help="Cosmic rays per cm^2 per minute"),
    field_rotation: float = typer.Option(
        0.0, help="Field rotation on the detector, degrees per hour (an alt-azimuth mount)"
    ),
    flip_at: int | None = typer.Option(
        None, help="Meridian flip before this light (0-based): field turned 180 degrees, PIERSIDE written"
    ),
    seeing_peak: float = typer.Option(
        0.0, help="Fractional rise of the seeing to a maximum at mid-transit (0.6: 1.6 x the FWHM)"
    ),
    transit: bool = typer.Option(True, "--transit/--no-transit", help="Inject the transit"),
    variable: bool = typer.Option(False, "--variable", help="Make one comparison star variable"),
    moving: bool = typer.Option(False, "--moving", help="Add a moving object"),
    mover: list[str] = typer.Option(
        [],
        "--mover",
        help="Add a moving object (repeat): mag=17.5,rate=2 (arcsec/min) or mag=18,px=1.5 (px/frame), "
        "optional angle= (deg from +x), x=, y= (start, px); what is left out is random",
    ),
    wcs: bool = typer.Option(False, "--wcs", help="Write the true WCS into the light headers"),
    junk: bool = typer.Option(False, "--junk", help="Add junk files (truncated, empty, text) to the night"),
    gain: float | None = typer.Option(None, help="Electrons per ADU of the camera (default 1.5)"),
    gain_setting: int | None = typer.Option(
        None, help="CMOS gain setting the nina dialect writes in GAIN (default 139)"
    ),
    offset_setting: int | None = typer.Option(
        None, help="CMOS offset setting the nina dialect writes in OFFSET (default 21)"
    ),
    egain: bool = typer.Option(
        True, "--egain/--no-egain", help="Write EGAIN (e-/ADU); --no-egain: a driver that does not report it"
    ),
    sky: str = typer.Option(
        "real",
        help="Stars: 'real' (the index files' Tycho-2 stars at the pointing and random faint ones, so "
        "the frames plate-solve; random without index files) or 'random' (a field that will not solve)",
    ),
) -> None:
    """Write a synthetic night of raw frames (seeded, reproducible) and its truth.json."""
    from nightpipe.simulate.night import TRUTH_FILE

    obs = state(ctx).settings.observatory
    options = _options(
        seed=seed,
        dialect=dialect,
        size=size,
        binning=binning,
        overscan=overscan,
        adc_bits=adc_bits,
        lights=lights,
        exptime=exptime,
        cadence=cadence,
        start=start,
        ra=ra,
        dec=dec,
        object_name=object_name,
        filter_name=filter_name,
        n_bias=n_bias,
        n_dark=n_dark,
        dark_exptimes=dark_exptimes,
        n_flat=n_flat,
        flat_filters=flat_filters,
        dome_flats=dome_flats,
        psf=psf,
        fwhm=fwhm,
        pixel_scale=pixel_scale,
        cosmic_rate=cosmic_rate,
        field_rotation=field_rotation,
        flip_at=flip_at,
        seeing_peak=seeing_peak,
        transit=transit,
        variable=variable,
        moving=moving,
        wcs=wcs,
        junk=junk,
        latitude=obs.latitude,
        longitude=obs.longitude,
        elevation=obs.elevation,
        site_name=obs.name,
        gain=gain,
        gain_setting=gain_setting,
        offset_setting=offset_setting,
        egain=egain,
        movers=mover,
    )
    if sky not in ("real", "random"):
        raise ConfigError(f"--sky {sky!r} is not real or random")
    if sky == "real":
        from nightpipe.simulate.real_sky import real_sky_stars

        stars = real_sky_stars(options, state(ctx).settings.astrometry.index_dirs, seed)
        if stars is not None:
            options = replace(options, stars=stars)
    from nightpipe.simulate import simulate_night

    truth = simulate_night(outdir, options, progress=progress_for(ctx))
    console().print(f"wrote {len(truth.frames)} frames and {outdir / TRUTH_FILE}")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the main app."""
    app.command("simulate")(simulate)
