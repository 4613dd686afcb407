"""Building master bias, dark, flat and bad-pixel frames from the inventory's calibration frames.

The step :func:`run_masters` groups the calibration frames of the database by the keys that
must match (kind, night, binning, raw size, gain, offset, readout mode, the filter for flats,
the exposure for darks, the temperature within ``calibration.temperature_tolerance``), and
builds one master per group, biases first, then darks (bias-subtracted with the matching
master bias, when there is one), then flats (bias- and dark-corrected, normalised by the median
of a central region), then one bad-pixel mask per detector set-up. Every input is read band by
band through :func:`nightpipe.calib.combine.combine_sources`, so memory stays bounded.

A master is written atomically as FITS (primary float32, ``UNCERT`` standard error, ``MASK``
flags) with its provenance in the header, and registered in the library
(:mod:`nightpipe.calib.library`). A group whose inputs (files and the masters they were
corrected with) and calibration settings are unchanged is skipped.

This module is the step: it selects the frames, groups them
(:mod:`~nightpipe.calib.master_groups`), builds the master of each group
(:mod:`~nightpipe.calib.master_build`: inputs read by :mod:`~nightpipe.calib.master_inputs`,
checked and measured by :mod:`~nightpipe.calib.master_quality`, written by
:mod:`~nightpipe.calib.master_files`), then the bad-pixel masks, and draws the plots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightpipe.calib.badpix import bad_pixel_mask
from nightpipe.calib.library import MasterKeys, as_utc, existing_master, register_master
from nightpipe.calib.master_build import STEP, MastersSummary, build_group, inputs_digest
from nightpipe.calib.master_files import SOFTWARE, unique_master_path
from nightpipe.calib.master_groups import BUILD_ORDER, FrameGroup, group_frames
from nightpipe.calib.master_inputs import MasterImage, PreparedRows, load_master, prepare_frame
from nightpipe.calib.master_quality import central_region, difference_noise, flat_problem, master_quality
from nightpipe.config import Settings
from nightpipe.errors import NightpipeError
from nightpipe.frames.fitsio import write_fits_atomic
from nightpipe.frames.flags import PixelFlag
from nightpipe.frames.headers import ascii_text
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, Master

log = logging.getLogger(__name__)


def build_badpix(
    db: Database, settings: Settings, masters: Sequence[Master], *, taken: set[Path]
) -> list[Master]:
    """One bad-pixel mask per detector set-up from the darks (hot) and flats (dead, low) given;
    returns the masks written (a mask made from the same masters with the same settings is kept).

    The hot pixels come from the longest bias-subtracted dark of the set-up (else the longest
    dark); dead and low-response pixels from every flat of the set-up.
    """
    cal = settings.calibration
    setups: dict[tuple[Any, ...], list[Master]] = {}
    for m in masters:
        if m.kind in ("dark", "flat"):
            key = (m.xbin, m.ybin, m.naxis1, m.naxis2, m.gain, m.offset, m.readout_mode, m.gain_setting)
            setups.setdefault(key, []).append(m)
    rows: list[Master] = []
    settings_hash = settings.digest("calibration")
    for members in setups.values():
        darks = sorted(
            (m for m in members if m.kind == "dark"), key=lambda m: (not m.bias_included, m.exptime or 0.0)
        )
        flats = [m for m in members if m.kind == "flat"]
        images = [load_master(m) for m in ([darks[-1]] if darks else []) + flats]
        shapes = {img.data.shape for img in images}
        if len(shapes) != 1:
            log.warning("bad-pixel mask skipped: masters of one set-up have shapes %s", sorted(shapes))
            continue
        shape = shapes.pop()
        mask = np.zeros(shape, np.uint16)
        if darks:
            dark = images[0].data
            mask |= bad_pixel_mask(shape, dark=dark - np.nanmedian(dark), hot_sigma=cal.hot_pixel_sigma)
        for img in images[1 if darks else 0 :]:
            mask |= bad_pixel_mask(shape, flat=img.data, min_flat_level=cal.min_flat_level)
        ref = darks[-1] if darks else flats[0]
        times = [as_utc(m.obs_time) for m in members if m.obs_time is not None]
        keys = MasterKeys(
            kind="badpix",
            xbin=ref.xbin,
            ybin=ref.ybin,
            naxis1=ref.naxis1,
            naxis2=ref.naxis2,
            gain=ref.gain,
            offset=ref.offset,
            readout_mode=ref.readout_mode,
            gain_setting=ref.gain_setting,
            ccd_temp=ref.ccd_temp,
            obs_time=max(t for t in times if t is not None) if times else None,
        )
        inputs_hash = inputs_digest([], images)
        path = unique_master_path(Path(settings.paths.masters), keys, taken, inputs_hash)
        with db.session() as session:
            kept = existing_master(session, "badpix", inputs_hash, settings_hash)
        if kept is not None and Path(kept.path) == path and path.is_file():
            continue  # made from these very masters already (by a run killed before it ended, say)
        header = fits.Header()
        header["NPKIND"] = ("badpix", "nightpipe bad-pixel mask")
        header["BUNIT"] = ("1", "bit flags: nightpipe.frames.flags.PixelFlag")
        header["NPINHASH"] = inputs_hash
        header["NPSOFT"] = SOFTWARE
        header["HOTSIG"] = (cal.hot_pixel_sigma, "hot: dark above median + HOTSIG x MAD std")
        header["MINFLAT"] = (cal.min_flat_level, "dead: normalised flat below this")
        for img in images:
            header["HISTORY"] = ascii_text(f"from master {img.path}")
        for flag in (PixelFlag.HOT, PixelFlag.DEAD, PixelFlag.LOW_FLAT):
            name = str(flag.name)
            header[f"NP{name[:6]}"] = (int(np.count_nonzero(mask & flag)), f"pixels flagged {name}")
        write_fits_atomic(fits.HDUList([fits.PrimaryHDU(mask, header=header)]), path)
        quality = {
            "hot_pixels": int(np.count_nonzero(mask & PixelFlag.HOT)),
            "dead_pixels": int(np.count_nonzero(mask & PixelFlag.DEAD)),
            "low_pixels": int(np.count_nonzero(mask & PixelFlag.LOW_FLAT)),
            "shape": list(shape),
        }
        with db.session() as session:
            rows.append(
                register_master(
                    session,
                    path=path,
                    keys=keys,
                    nframes=len(images),
                    inputs=[str(img.path) for img in images],
                    inputs_hash=inputs_hash,
                    settings_hash=settings_hash,
                    software=SOFTWARE,
                    quality=quality,
                )
            )
    return rows


def select_calibration_frames(session: Session, night: str | None = None) -> list[Frame]:
    """Readable bias, dark and flat frames of the inventory (of one night, or all)."""
    query = select(Frame).where(Frame.status == "ok", Frame.kind.in_(BUILD_ORDER))
    if night is not None:
        query = query.where(Frame.night == night)
    return list(session.scalars(query.order_by(Frame.mid_utc, Frame.path, Frame.hdu)))


def run_masters(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    force: bool = False,
    plots: bool = False,
    progress: Progress | None = None,
) -> MastersSummary:
    """Build every master of the inventory's calibration frames (the ``masters`` step).

    Parameters
    ----------
    settings
        The settings (``calibration``, ``paths.masters``, ``parallel.threads``).
    db
        The database holding the inventory (``frames``) and the library (``masters``).
    night
        Only the frames of this night (``YYYY-MM-DD``); ``None``: every night.
    force
        Rebuild even when inputs and settings are unchanged.
    plots
        Also draw each master as a PNG under ``paths.output/plots/<night>/masters``.
    progress
        Receives one advance per band of rows combined.

    Returns
    -------
    MastersSummary
        Built, skipped and failed masters, and the frames left out (also recorded as failed
        ``masters`` steps in the database).

    Examples
    --------
    >>> summary = run_masters(settings, open_database(settings.database.url))  # doctest: +SKIP
    """
    start = time.perf_counter()
    progress = progress or NullProgress()
    summary = MastersSummary()
    with db.session() as session:
        frames = select_calibration_frames(session, night)
        session.expunge_all()
    # within a kind, the groups of most frames first: they get the plain names (unique_master_path)
    groups = sorted(group_frames(frames, settings), key=lambda g: (BUILD_ORDER.index(g.kind), -len(g.frames)))
    log.info("%d calibration frames in %d groups", len(frames), len(groups))
    taken: set[Path] = set()
    made: list[Master] = []
    for group in groups:
        try:
            row = build_group(
                db, group, settings, summary=summary, taken=taken, force=force, progress=progress
            )
        except NightpipeError as exc:
            log.error("%s: %s", group.label(), exc)
            summary.failed.append((group.label(), str(exc)))
            continue
        if row is not None:
            made.append(row)
            if plots and (row.path in summary.built or not _plot_path(row, settings, group.night).is_file()):
                _plot(row, settings, group.night)
    # from every master of the run, built now or kept: a run killed between the last master and
    # its mask, or one that rebuilt only some masters, must end with the mask an uninterrupted run makes
    for row in build_badpix(db, settings, made, taken=taken):
        summary.built.append(row.path)
    summary.seconds = time.perf_counter() - start
    return summary


def _plot_path(row: Master, settings: Settings, night: str | None) -> Path:
    return (
        Path(settings.paths.output) / "plots" / (night or "all") / "masters" / (Path(row.path).stem + ".png")
    )


def _plot(row: Master, settings: Settings, night: str | None) -> None:
    from nightpipe.report.master_plots import plot_master

    out = _plot_path(row, settings, night)
    try:
        plot_master(row.path, out)
    except (OSError, ValueError, NightpipeError) as exc:
        log.warning("no plot for %s: %s", row.path, exc)


__all__ = [
    "BUILD_ORDER",
    "SOFTWARE",
    "STEP",
    "FrameGroup",
    "MasterImage",
    "MastersSummary",
    "PreparedRows",
    "build_badpix",
    "build_group",
    "central_region",
    "difference_noise",
    "flat_problem",
    "group_frames",
    "inputs_digest",
    "load_master",
    "master_quality",
    "prepare_frame",
    "run_masters",
    "select_calibration_frames",
]
