"""Building the master of one group of calibration frames (:func:`build_group`).

The group's inputs (files, and the masters they are corrected with) and the calibration
settings are hashed; an unchanged group keeps its master. Otherwise each frame is opened as a
corrected row source (:mod:`nightpipe.calib.master_inputs`; a bad frame is recorded and left
out), the sources are combined band by band, flats renormalised and flagged, and the master is
written (:mod:`nightpipe.calib.master_files`), registered in the library and recorded as the
``masters`` step of its frames.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from nightpipe.calib.badpix import bad_pixel_mask
from nightpipe.calib.combine import CombineOptions, CombineResult, combine_sources
from nightpipe.calib.library import existing_master, find_master, register_master
from nightpipe.calib.master_files import SOFTWARE, master_header, unique_master_path, write_master
from nightpipe.calib.master_groups import FrameGroup
from nightpipe.calib.master_inputs import MasterImage, PreparedRows, load_master, prepare_frame
from nightpipe.calib.master_quality import central_region, difference_noise, master_quality
from nightpipe.config import Settings
from nightpipe.errors import CalibrationError, FitsReadError, HeaderError
from nightpipe.frames.flags import PixelFlag
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame, Master
from nightpipe.store.steps import record_step

# the records keep the logger (and so the [calib.masters] tag) they had before the module was split
log = logging.getLogger("nightpipe.calib.masters")


STEP = "masters"


@dataclass
class MastersSummary:
    """What :func:`run_masters` did."""

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bad_frames: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no group failed (bad single frames are tolerated)."""
        return not self.failed


def inputs_digest(frames: Sequence[Frame], dependencies: Sequence[MasterImage]) -> str:
    """Hash of the input files (path, HDU, size, mtime, SHA-1) and of the masters applied."""
    items = sorted((str(Path(f.path)), f.hdu, f.size, round(f.mtime or 0.0, 3), f.sha1 or "") for f in frames)
    deps = sorted((str(d.path), d.inputs_hash, d.settings_hash) for d in dependencies)
    text = json.dumps({"frames": items, "masters": deps}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _representative(group: FrameGroup) -> Frame:
    """A frame standing for the group when looking up the masters to correct it with."""
    k = group.keys
    first = group.frames[0]
    return Frame(
        path=first.path,
        hdu=first.hdu,
        kind=k.kind,
        xbin=k.xbin,
        ybin=k.ybin,
        naxis1=k.naxis1,
        naxis2=k.naxis2,
        gain=k.gain,
        offset=k.offset,
        readout_mode=k.readout_mode,
        gain_setting=k.gain_setting,
        filter=k.filter,
        exptime=k.exptime,
        ccd_temp=k.ccd_temp,
        mid_utc=k.obs_time,
    )


def _dependencies(
    session: Session, group: FrameGroup, settings: Settings
) -> tuple[MasterImage | None, MasterImage | None]:
    if group.kind == "bias":
        return None, None
    rep = _representative(group)
    bias_row = find_master(session, rep, "bias", settings)
    bias = load_master(bias_row) if bias_row is not None else None
    dark = None
    if group.kind == "flat":
        dark_row = find_master(session, rep, "dark", settings)
        if dark_row is not None and not (dark_row.bias_included and bias is not None):
            dark = load_master(dark_row)
        elif dark_row is not None and dark_row.bias_included and bias is not None:
            log.info("flats %s: dark %s includes the bias; using the bias only", group.label(), dark_row.path)
    return bias, dark


def build_group(
    db: Database,
    group: FrameGroup,
    settings: Settings,
    *,
    summary: MastersSummary,
    taken: set[Path],
    force: bool = False,
    progress: Progress | None = None,
) -> Master | None:
    """Build (or skip, when unchanged) the master of one group; bad frames are recorded and left out.

    Returns the library row, or ``None`` when no frame of the group could be used.
    """
    cal = settings.calibration
    settings_hash = settings.digest("calibration")
    label = group.label()
    with db.session() as session:
        bias, dark = _dependencies(session, group, settings)
        deps = [m for m in (bias, dark) if m is not None]
        inputs_hash = inputs_digest(group.frames, deps)
        old = existing_master(session, group.kind, inputs_hash, settings_hash)
        if old is not None and Path(old.path).is_file() and not force:
            taken.add(Path(old.path))  # no other master of this run may take its name
            summary.skipped.append(old.path)
            log.info("%s: unchanged inputs and settings, kept %s", label, old.path)
            return old
    bias_included = group.kind == "dark" and bias is None
    sources: list[PreparedRows] = []
    used: list[Frame] = []
    failures: list[tuple[Frame, str]] = []
    try:
        for frame in group.frames:
            try:
                sources.append(
                    prepare_frame(frame, settings, bias=bias, dark=dark, normalise=group.kind == "flat")
                )
                used.append(frame)
            except (FitsReadError, HeaderError, CalibrationError) as exc:
                log.warning("%s", exc)
                failures.append((frame, str(exc)))
        shapes = {s.shape for s in sources}
        if len(shapes) > 1:
            raise CalibrationError(f"{label}: trimmed shapes differ between frames: {sorted(shapes)}")
        if not sources:
            reason = f"{label}: no usable frame"
            with db.session() as session:
                _record_failures(session, failures, group.night)
            summary.failed.append((label, reason))
            summary.bad_frames.extend((f.path, r) for f, r in failures)
            return None
        if len(sources) < 3:
            log.warning("%s: only %d frame(s); the master will be noisy", label, len(sources))
        options = CombineOptions.from_settings(cal, threads=settings.parallel.threads)
        result = combine_sources(sources, options, progress=progress, description=label)
        plan = sources[0].plan
        pair_noise = _pair_noise(sources, cal.flat_norm_region) if group.kind != "flat" else None
    finally:
        for src in sources:
            src.close()
    data, mask = _finish(group.kind, result, settings)
    exptime = group.keys.exptime
    quality = master_quality(group.kind, result, exptime, bias_included)
    if group.kind == "flat":
        quality["dead_pixels"] = int(np.count_nonzero(mask & PixelFlag.DEAD))
        quality["low_pixels"] = int(np.count_nonzero(mask & PixelFlag.LOW_FLAT))
        quality["level"] = float(np.nanmedian(data))
    if group.kind == "dark":
        quality["hot_pixels"] = int(np.count_nonzero(mask & PixelFlag.HOT))
    if pair_noise is not None:
        quality["pair_noise"] = round(pair_noise, 6)
    quality["shape"] = list(data.shape)
    quality["bad_inputs"] = len(failures)
    uncert = result.uncert
    if group.kind == "flat":
        uncert = uncert / np.float32(_flat_scale(result.data, cal.flat_norm_region))
    path = unique_master_path(Path(settings.paths.masters), group.keys, taken, inputs_hash)
    header = master_header(
        group,
        used,
        result,
        plan,
        inputs_hash=inputs_hash,
        settings_hash=settings_hash,
        bias=bias,
        dark=dark,
        bias_included=bias_included,
        quality=quality,
    )
    write_master(path, data, uncert, mask, header)
    with db.session() as session:
        row = register_master(
            session,
            path=path,
            keys=group.keys,
            nframes=len(used),
            inputs=[f"{f.path}[{f.hdu}]" for f in used],
            inputs_hash=inputs_hash,
            settings_hash=settings_hash,
            software=SOFTWARE,
            quality=quality,
            bias_included=bias_included,
        )
        for frame in used:
            if frame.id is not None:
                record_step(
                    session,
                    step=STEP,
                    status="ok",
                    frame_id=frame.id,
                    night=group.night,
                    output_path=str(path),
                )
        _record_failures(session, failures, group.night)
    summary.built.append(str(path))
    summary.bad_frames.extend((f.path, r) for f, r in failures)
    log.info("built %s from %d frames", path, len(used))
    return row


def _pair_noise(sources: Sequence[PreparedRows], fraction: float) -> float | None:
    """Per-frame noise from the central rows of the first two frames (``None`` with one frame)."""
    if len(sources) < 2:
        return None
    rows, cols = central_region(sources[0].shape, fraction)
    a = sources[0].read_rows(rows.start, rows.stop)[:, cols]
    b = sources[1].read_rows(rows.start, rows.stop)[:, cols]
    value = difference_noise(a, b)
    return value if np.isfinite(value) else None


def _record_failures(session: Session, failures: Sequence[tuple[Frame, str]], night: str | None) -> None:
    for frame, reason in failures:
        if frame.id is not None:
            record_step(session, step=STEP, status="failed", frame_id=frame.id, night=night, reason=reason)


def _flat_scale(data: np.ndarray, fraction: float) -> float:
    centre = data[central_region(data.shape, fraction)]
    finite = centre[np.isfinite(centre)]
    scale = float(np.median(finite)) if finite.size else 1.0
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def _finish(kind: str, result: CombineResult, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """The final data and flag plane of a master: flats renormalised to 1 at the centre."""
    cal = settings.calibration
    data = result.data
    mask = np.zeros(data.shape, np.uint16)
    mask[result.nused == 0] |= np.uint16(PixelFlag.NO_DATA)
    if kind == "flat":
        data = data / np.float32(_flat_scale(data, cal.flat_norm_region))
        mask |= bad_pixel_mask(data.shape, flat=data, min_flat_level=cal.min_flat_level)
    elif kind == "dark":
        mask |= bad_pixel_mask(data.shape, dark=data, hot_sigma=cal.hot_pixel_sigma)
    return data, mask
