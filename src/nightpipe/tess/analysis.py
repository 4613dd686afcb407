"""``nightpipe tess``: TESS/Kepler/K2 files to light curves, transit fits and products.

Each file is read (pixel file: aperture photometry; light-curve file: quality-masked
flux), turned into the shared :class:`~nightpipe.timeseries.lightcurve.LightCurve`, and
the files of one target (several sectors, say) are fitted together when its period is
known, with per-transit mid-times. A file that cannot be read or measured is recorded as
failed with its reason and the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nightpipe.config import Settings, TargetConfig
from nightpipe.errors import NightpipeError, TimeseriesError
from nightpipe.progress import NullProgress, Progress
from nightpipe.store import Database
from nightpipe.store.steps import record_step
from nightpipe.tess.lightcurves import (
    fit_multi_transit,
    lightcurve_from_file,
    phase_fold,
    transit_duration,
)
from nightpipe.tess.photometry import (
    ApertureChoice,
    BackgroundChoice,
    SystematicsChoice,
    photometer,
)
from nightpipe.tess.products import cadence_s, write_products
from nightpipe.tess.quality import BitmaskName
from nightpipe.tess.readers import (
    is_lightcurve_file,
    read_aperture_mask,
    read_lightcurve_file,
    read_pixel_file,
)
from nightpipe.tess.results import FileLightCurve, TargetResult, TessSummary
from nightpipe.timeseries.lightcurve import LightCurve
from nightpipe.timeseries.products import fit_options, priors_from_target
from nightpipe.timeseries.transit import TransitPriors

log = logging.getLogger(__name__)

STEP = "tess"


@dataclass(frozen=True)
class TessOptions:
    """Choices of the TESS analysis (the CLI's options).

    Attributes
    ----------
    aperture, background, threshold, systematics
        Pixel photometry choices (see :func:`nightpipe.tess.photometry.photometer`).
    quality
        Quality bitmask name or integer.
    flux_column
        Light-curve files: the flux column (default: PDCSAP or the HLSP's corrected flux).
    period, t0
        Ephemeris; override the target's entry in the settings. Without a period no fit is made.
    fit
        Fit the transit when a period is known.
    per_transit
        Also fit each transit's mid-time (O-C).
    aperture_mask
        A custom aperture file (see :func:`~nightpipe.tess.readers.read_aperture_mask`); overrides
        ``aperture``.
    target
        Treat every file as this target (its ``timeseries.targets`` entry, product names)
        instead of the file's ``OBJECT`` (``TIC ...``, ``EPIC ...``).
    """

    aperture: ApertureChoice = "auto"
    background: BackgroundChoice = "auto"
    threshold: float = 3.0
    systematics: SystematicsChoice = "none"
    quality: BitmaskName | int = "default"
    flux_column: str | None = None
    period: float | None = None
    t0: float | None = None
    fit: bool = True
    per_transit: bool = True
    target: str | None = None
    aperture_mask: Path | None = None


def output_label(header: Any, time_bjd: np.ndarray) -> str:
    """The folder name of a file's products: ``TESS-S01``, ``K2-C01``, ``Kepler-Q05``, else the date."""
    telescope = str(header.get("TELESCOP", "") or "").strip()
    for key, fmt in (("SECTOR", "TESS-S{:02d}"), ("CAMPAIGN", "K2-C{:02d}"), ("QUARTER", "Kepler-Q{:02d}")):
        value = header.get(key)
        if isinstance(value, int):
            return fmt.format(value)
    finite = time_bjd[np.isfinite(time_bjd)]
    if finite.size:
        from astropy.time import Time

        return f"{telescope or 'space'}-{Time(float(finite[0]), format='jd', scale='tdb').utc.isot[:10]}"
    return telescope or "space"


def _same_name(a: str, b: str) -> bool:
    return "".join(a.lower().split()) == "".join(b.lower().split())


def target_priors(target: str, settings: Settings, options: TessOptions) -> TransitPriors | None:
    """The transit priors of ``target``: its entry in ``timeseries.targets`` (matched by name,
    ignoring case and spaces) with ``options.period``/``options.t0`` overriding; ``None``
    without a period."""
    known: TargetConfig | None = next(
        (t for t in settings.timeseries.targets if _same_name(t.name, target)), None
    )
    if known is not None and (known.period is not None or options.period is not None):
        return priors_from_target(known, period=options.period, t0=options.t0)
    if options.period is None:
        return None
    return TransitPriors(period=options.period, t0=options.t0)


def in_transit_mask(time_bjd: np.ndarray, priors: TransitPriors | None) -> np.ndarray | None:
    """Cadences within 0.75 transit durations of a predicted mid-transit (so 1.5 durations in
    all, with margin), or ``None`` without an ephemeris. The duration comes from the priors'
    a/Rs and inclination, else 0.2 days is assumed."""
    if priors is None or priors.t0 is None:
        return None
    duration = transit_duration(priors) or 0.2
    return np.asarray(np.abs(phase_fold(time_bjd, priors.period, priors.t0)) < 0.75 * duration)


def measure_file(path: Path, options: TessOptions, settings: Settings | None = None) -> FileLightCurve:
    """Read one file and return its light curve (raises a :class:`NightpipeError` on bad input).

    With a systematics correction and a known ephemeris (options or ``settings``' targets),
    the in-transit cadences are left out of the correction's fit.
    """
    if is_lightcurve_file(path):
        lcf = read_lightcurve_file(path, flux_column=options.flux_column)
        lc = lightcurve_from_file(lcf, quality_bitmask=options.quality)
        return FileLightCurve(path, lcf.target, output_label(lcf.header, lcf.time_bjd), lc)
    pixels = read_pixel_file(path)
    transit_mask = None
    if options.systematics != "none" and settings is not None:
        transit_mask = in_transit_mask(
            pixels.time_bjd, target_priors(options.target or pixels.target, settings, options)
        )
        if transit_mask is None:
            log.info("%s: no ephemeris, the systematics fit uses every cadence", path.name)
    aperture = read_aperture_mask(options.aperture_mask) if options.aperture_mask else options.aperture
    phot = photometer(
        pixels,
        aperture=aperture,
        background=options.background,
        quality_bitmask=options.quality,
        threshold=options.threshold,
        systematics=options.systematics,
        transit_mask=transit_mask,
    )
    if not phot.good.any():
        raise TimeseriesError(
            f"no good cadence after the quality mask {phot.meta['quality_bitmask']}",
            path=path,
            hint="try --quality none",
        )
    lc = phot.to_lightcurve()
    return FileLightCurve(path, pixels.target, output_label(pixels.header, pixels.time_bjd), lc, phot)


def combine(curves: Sequence[FileLightCurve]) -> LightCurve:
    """The light curves of one target (each normalised on its own) as one, sorted in time."""
    if len(curves) == 1:
        return curves[0].lightcurve
    parts = [c.lightcurve for c in curves]
    aux_names = set.intersection(*(set(p.aux) for p in parts))
    joined = LightCurve(
        time=np.concatenate([p.time for p in parts]),
        flux=np.concatenate([p.flux for p in parts]),
        flux_err=np.concatenate([p.flux_err for p in parts]),
        aux={name: np.concatenate([p.aux[name] for p in parts]) for name in aux_names},
        meta={**parts[0].meta, "files": [str(c.path) for c in curves]},
    )
    return joined.sort()


def analyse_target(
    target: str, curves: list[FileLightCurve], settings: Settings, options: TessOptions
) -> TargetResult:
    """Combine one target's light curves and fit its transits when a period is known."""
    combined = combine(curves)
    if combined.meta.get("target") != target:
        combined = combined.with_meta(target=target, object=combined.meta.get("target"))
    result = TargetResult(target=target, label=curves[0].label, curves=curves, combined=combined)
    priors = target_priors(target, settings, options)
    if not options.fit or priors is None:
        if priors is None:
            log.info("%s: no period (give --period or a [timeseries] target): no transit fit", target)
        return result
    try:
        result.fit = fit_multi_transit(
            combined,
            priors,
            fit_options(settings.timeseries, exptime_s=cadence_s(combined)),
            per_transit=options.per_transit,
        )
    except TimeseriesError as exc:
        result.fit_error = str(exc)
        log.warning("%s: transit fit failed: %s", target, exc)
    return result


def run_tess(
    settings: Settings,
    files: Sequence[Path],
    options: TessOptions,
    *,
    db: Database | None = None,
    output: Path | None = None,
    progress: Progress | None = None,
) -> TessSummary:
    """Analyse TESS/Kepler/K2 files: light curves, fits, products; one bad file never stops the rest.

    Parameters
    ----------
    settings
        The effective settings (fit options, known targets, output folder).
    files
        Pixel files and light-curve files, in any mix.
    options
        Photometry, quality and ephemeris choices.
    db
        When given, every file's outcome is recorded (step ``tess``, status ok/failed, reason).
    output
        Folder of the products (default ``paths.output``); they go to ``lightcurves/<label>/``.
    progress
        Receives one advance per file.
    """
    progress = progress or NullProgress()
    progress.start(len(files), "TESS files")
    measured: dict[str, list[FileLightCurve]] = {}
    failed: dict[Path, str] = {}
    for path in files:
        path = Path(path)
        started = time.perf_counter()
        try:
            item = measure_file(path, options, settings)
        except NightpipeError as exc:
            failed[path] = str(exc)
            log.info("recorded as failed: %s", exc)
            _record(db, path, "failed", str(exc), time.perf_counter() - started)
        else:
            measured.setdefault(options.target or item.target, []).append(item)
            _record(db, path, "ok", None, time.perf_counter() - started)
        progress.advance(path.name)
    progress.stop()
    targets = []
    for target, curves in measured.items():
        result = analyse_target(target, curves, settings, options)
        result.products = write_products(result, output or settings.paths.output)
        targets.append(result)
    return TessSummary(targets=targets, failed=failed)


def step_name(path: Path) -> str:
    """The ``step_runs.step`` of a file: ``tess:`` and a hash of its absolute path (fits 32 chars)."""
    import hashlib

    return f"{STEP}:{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]}"


def _record(db: Database | None, path: Path, status: str, reason: str | None, seconds: float) -> None:
    if db is None:
        return
    with db.session() as session:
        record_step(
            session,
            step=step_name(path),
            status=status,
            reason=reason,
            output_path=str(path.resolve()),
            details={"file": str(path)},
            seconds=seconds,
        )
