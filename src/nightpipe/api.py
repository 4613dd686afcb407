"""nightpipe from Python: run a night, analyse one frame, read the archive of measured nights.

The same engine as the CLI and the web app, with no terminal in between::

    import nightpipe

    settings = nightpipe.load_config("nightpipe.toml", overrides=["catalog.offline=true"])
    run = nightpipe.run_night(["raw/2026-12-06"], settings)
    print(run.exit_code)                      # 0 all done, 1 some frames failed

    frame = nightpipe.analyse_frame("raw/2026-12-06/M42_0001.fits", settings)
    frame.sources["ra", "dec", "aper_flux"]   # an astropy Table; frame.wcs is None without one

    with nightpipe.open_archive(settings.database.url) as archive:
        lc = archive.light_curve("05:35:17.3 -05:23:28")   # or a target name, or a catalogue id
        lc.mag, lc.bjd_tdb

Every function raises a :class:`nightpipe.errors.NightpipeError` with the file or field named
and a hint, as the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from nightpipe.config import Settings, load_settings

if TYPE_CHECKING:
    from astropy.table import Table
    from astropy.wcs import WCS

    from nightpipe.pipeline.interrupt import StopRequest
    from nightpipe.pipeline.night import NightRun
    from nightpipe.progress import Progress
    from nightpipe.starlc import StarLightCurve
    from nightpipe.store.db import Database


def load_config(
    path: str | Path | None = None, *, overrides: Sequence[str] = (), environ: dict[str, str] | None = None
) -> Settings:
    """The validated settings of a TOML (or INI) file, with ``section.key=value`` overrides.

    ``environ`` replaces the process environment (``NIGHTPIPE_<SECTION>__<KEY>`` variables);
    pass ``{}`` to ignore it.

    >>> settings = load_config(overrides=["catalog.offline=true", "photometry.detect_sigma=4"], environ={})
    >>> settings.catalog.offline, settings.photometry.detect_sigma
    (True, 4.0)
    """
    return load_settings(Path(path) if path is not None else None, overrides=list(overrides), environ=environ)


def _settings(config: Settings | str | Path | None) -> Settings:
    return config if isinstance(config, Settings) else load_config(config)


def run_night(
    raw_dirs: Sequence[str | Path],
    config: Settings | str | Path | None = None,
    *,
    night: str | None = None,
    steps: Sequence[str] | None = None,
    progress: Progress | None = None,
    stop: StopRequest | None = None,
) -> NightRun:
    """Run the whole pipeline (or ``steps``) on raw folders, as ``nightpipe run`` does.

    Incremental and crash-safe like the CLI: a second call redoes nothing that did not change.
    The result holds each night's step summaries and ``exit_code``. A ``stop`` request (see
    :mod:`nightpipe.pipeline.interrupt`) asked from another thread ends the run at the next frame.
    """
    from nightpipe.pipeline.night import run_night as _run

    return _run(_settings(config), [Path(d) for d in raw_dirs], night=night, steps=steps, progress=progress,
                stop=stop)  # fmt: skip


@dataclass(frozen=True)
class FrameAnalysis:
    """One measured frame: its source table, its WCS (when it has one) and its seeing."""

    path: Path
    sources: Table
    wcs: WCS | None
    fwhm_px: float | None

    def __len__(self) -> int:
        return len(self.sources)


def analyse_frame(path: str | Path, config: Settings | str | Path | None = None) -> FrameAnalysis:
    """Detect and measure the sources of one FITS file (raw or calibrated); nothing is written.

    Sky positions come from the file's WCS when it has a valid one (``wcs`` is then set).
    """
    from astropy.wcs import WCS

    from nightpipe.photometry.step import measure_file, read_frame

    settings = _settings(config)
    image = read_frame(path)  # read once: its pixels are measured, its header gives the WCS
    table, _ = measure_file(path, settings, image=image)
    header = image.header
    wcs = WCS(header) if header.get("CTYPE1") else None
    fwhm = table.meta.get("fwhm_px")
    return FrameAnalysis(Path(path), table, wcs if wcs is not None and wcs.has_celestial else None,
                         float(fwhm) if fwhm is not None else None)  # fmt: skip


class Archive:
    """The database of every measured night, read from Python (``open_archive``)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def nights(self) -> list[str]:
        """The nights with light frames, oldest first.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp, open_archive(f"sqlite:///{tmp}/db.sqlite") as archive:
        ...     archive.nights()
        []
        """
        from sqlalchemy import select

        from nightpipe.store.models import Frame

        with self.db.session() as session:
            rows = session.scalars(select(Frame.night).where(Frame.night.is_not(None)).distinct()).all()
        return sorted(str(n) for n in rows)

    def light_curve(
        self, star: str, *, radius_arcsec: float = 3.0, band: str | None = None
    ) -> StarLightCurve:
        """A star's calibrated magnitudes over every night (name, catalogue id or "RA DEC").

        Raises :class:`nightpipe.starlc.StarNotFoundError` when it cannot be resolved or was
        never measured.
        """
        from nightpipe.starlc import StarQuery, resolve_star, star_lightcurve

        ra, dec, label = resolve_star(star, self.settings, self.db)
        return star_lightcurve(self.db, StarQuery(ra, dec, label, radius_arcsec=radius_arcsec, band=band))

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def open_archive(url: str | None = None, config: Settings | str | Path | None = None) -> Archive:
    """Open (and migrate) the database at ``url`` (default: the configuration's ``database.url``)."""
    from nightpipe.store import open_database

    settings = _settings(config) if config is not None else load_config(environ={})
    return Archive(open_database(url or settings.database.url), settings)


__all__ = ["Archive", "FrameAnalysis", "analyse_frame", "load_config", "open_archive", "run_night"]
