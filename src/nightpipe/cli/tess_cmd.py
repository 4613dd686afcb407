"""``nightpipe tess FILE...``: TESS/Kepler/K2 pixel and light-curve files to light curves and fits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from nightpipe.cli.common import console, labelled, progress_for, state
from nightpipe.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    from nightpipe.tess.quality import BitmaskName

APERTURES = ("auto", "pipeline", "threshold")
BACKGROUNDS = ("auto", "file", "pixels", "none")
SYSTEMATICS = ("none", "regression", "pld")
QUALITY = ("none", "default", "hard", "hardest")


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise ConfigError(f"bad value {value!r} for {option}", hint=f"use one of {', '.join(allowed)}")
    return value


def _quality(value: str) -> BitmaskName | int:
    if value.isdigit():
        return int(value)
    return cast("BitmaskName", _choice(value, QUALITY, "--quality"))


def tess(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        None, help="Target pixel files, TESScut cut-outs or light-curve files", show_default=False
    ),
    period: float | None = typer.Option(
        None, "--period", help="Orbital period, days (enables the transit fit)"
    ),
    t0: float | None = typer.Option(
        None, "--t0", help="A mid-transit time, BJD_TDB (else found by a box search)"
    ),
    aperture: str = typer.Option("auto", "--aperture", help="auto, pipeline or threshold"),
    aperture_file: Path | None = typer.Option(
        None, "--aperture-file", help="Custom aperture: a text grid of 0/1 (row 0 first) or a FITS mask"
    ),
    threshold: float = typer.Option(3.0, "--threshold", help="Threshold aperture: sigma above the median"),
    background: str = typer.Option("auto", "--background", help="auto, file, pixels or none"),
    systematics: str = typer.Option("none", "--systematics", help="none, regression or pld"),
    quality: str = typer.Option(
        "default", "--quality", help="Quality bitmask: none, default, hard, hardest or N"
    ),
    flux_column: str | None = typer.Option(None, "--flux-column", help="Light-curve files: e.g. SAP_FLUX"),
    target: str | None = typer.Option(
        None, "--target", help="Name of the star (a configured target) instead of the files' OBJECT"
    ),
    no_fit: bool = typer.Option(False, "--no-fit", help="Only light curves, no transit fit"),
    no_timing: bool = typer.Option(False, "--no-timing", help="No per-transit mid-times"),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: paths.output)"),
    download: str | None = typer.Option(
        None, "--download", help="Online only: also fetch this target's files from MAST (needs lightkurve)"
    ),
    product: str = typer.Option("lc", "--product", help="With --download: lc, tpf or tesscut"),
    sector: int | None = typer.Option(None, "--sector", help="With --download: only this sector/campaign"),
    author: str = typer.Option("SPOC", "--author", help="With --download: SPOC, QLP, TESS-SPOC... or any"),
) -> None:
    """Light curves (and transit fits, with --period) from TESS, Kepler and K2 files on disk."""
    from nightpipe.store import open_database
    from nightpipe.tess.analysis import TessOptions, run_tess
    from nightpipe.tess.photometry import ApertureChoice, BackgroundChoice, SystematicsChoice

    settings = state(ctx).settings
    files = list(files or [])
    if download is not None:
        from nightpipe.tess.download import Product, download_products

        folder = settings.paths.cache.expanduser() / "mast"
        files += download_products(
            download,
            folder,
            product=cast(Product, _choice(product, ("lc", "tpf", "tesscut"), "--product")),
            sector=sector,
            author=None if author.lower() == "any" else author,
        )
    if not files:
        raise ConfigError(
            "no file to analyse", hint="give TESS/Kepler files, or --download TARGET when online"
        )
    options = TessOptions(
        aperture=cast(ApertureChoice, _choice(aperture, APERTURES, "--aperture")),
        background=cast(BackgroundChoice, _choice(background, BACKGROUNDS, "--background")),
        threshold=threshold,
        systematics=cast(SystematicsChoice, _choice(systematics, SYSTEMATICS, "--systematics")),
        quality=_quality(quality),
        flux_column=flux_column,
        period=period,
        t0=t0,
        fit=not no_fit,
        per_transit=not no_timing,
        target=target,
        aperture_mask=aperture_file,
    )
    db = open_database(settings.database.url)
    try:
        summary = run_tess(settings, files, options, db=db, output=out, progress=progress_for(ctx))
    finally:
        db.dispose()
    from rich.text import Text

    show = console()
    for result in summary.targets:
        lc = result.combined
        show.print(
            Text.assemble(
                (result.target, "bold"),
                f": {len(lc)} cadences from {len(result.curves)} file(s), {lc.time_scale}",
            )
        )
        if result.fit is not None:
            fit = result.fit.fit
            rp, tc = fit.params["rp_rs"], fit.params["tc"]
            show.print(
                f"  Rp/Rs {rp.median:.4f} ± {rp.err:.4f}, depth {rp.median**2 * 1e6:.0f} ppm, "
                f"tc {tc.median:.5f} ± {tc.err * 1440:.2f} min, {len(result.fit.times)} transit times"
            )
        elif result.fit_error:
            show.print(labelled("  no fit:", "yellow", result.fit_error))
        for kind, path in result.products.items():
            show.print(f"  {kind}: {path}")
    for reason in summary.failed.values():
        console(err=True).print(labelled("failed:", "red", reason))
    if not summary.targets:
        raise PipelineError(
            f"none of the {len(files)} file(s) could be read or measured", hint="see the reasons above"
        )


def register(app: typer.Typer) -> None:
    """Add the ``tess`` command."""
    app.command("tess")(tess)
