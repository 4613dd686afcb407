"""Calibrating a light frame: masters applied, product written (the step's loop: :mod:`nightpipe.calib.step`).

For each light frame of the inventory (one night, or all), the step does:

1. the library gives the bias, dark, flat and bad-pixel masters
   (:func:`nightpipe.calib.library.match_master`, with the reason when none fits);
2. a frame without a required master (bias, dark, flat) is recorded ``failed`` with the
   reasons and skipped, unless missing masters are allowed: then it is calibrated with what
   exists and the header says which corrections were not applied (``NOBIAS = T``...);
3. :func:`calibrate_frame` (pure: no database, picklable inputs, usable in a Dask worker)
   reads the raw frame, subtracts the overscan and trims, applies the masters in one fused
   pass (:func:`nightpipe.calib.apply.apply_calibration`), flags and optionally cleans
   cosmic rays, and writes ``calibrated/<night>/<stem>.fits`` atomically;
4. the outcome goes into ``step_runs`` (step ``calibrate``) with the masters used, the dark
   scaling, the flag counts and the output path; a night-level row sums the night up and
   says plainly when no master was applied at all.

Masters are read once and kept in a small cache; frames stream one at a time, so memory
stays bounded whatever the number of frames. A frame whose inputs (raw file, masters,
settings) have not changed since its last successful calibration is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from astropy.io import fits

from nightpipe.calib.apply import (
    ApplyParams,
    Calibrated,
    apply_calibration,
    flag_counts,
)
from nightpipe.calib.calibrated_io import science_header, write_calibrated
from nightpipe.calib.cosmics import CosmicParams, detect_cosmics
from nightpipe.calib.master_cache import MasterCache, MasterRef, master_arrays
from nightpipe.calib.overscan import apply_overscan, plan_overscan, trim
from nightpipe.calib.provenance import history_lines, product_keywords
from nightpipe.config import Settings
from nightpipe.errors import CalibrationError, NightpipeError
from nightpipe.frames.detector import DetectorValues
from nightpipe.frames.fitsio import header_span, read_image
from nightpipe.frames.flags import BAD_PIXEL_FLAGS, PixelFlag

log = logging.getLogger(__name__)

STEP = "calibrate"
REQUIRED = ("bias", "dark", "flat")


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class FrameJob:
    """Everything :func:`calibrate_frame` needs about one light frame (picklable)."""

    frame_id: int
    path: str
    hdu: int
    night: str | None
    exptime: float | None
    detector: DetectorValues  # gain, read noise, saturation and their sources
    masters: dict[str, MasterRef]
    missing: dict[str, str]
    output: Path


@dataclass(frozen=True)
class FrameOutcome:
    """What happened to one frame."""

    frame_id: int
    path: str
    status: str
    reason: str | None = None
    output: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class CalibrateSummary:
    """How the calibrate step went for a night (or for every night).

    Attributes
    ----------
    frames
        Light frames considered.
    ok
        Frames calibrated in this run.
    unchanged
        Frames skipped because their product is up to date.
    failed
        Frames that could not be calibrated (see ``failures``).
    without_masters
        Frames calibrated with no master at all (only with missing masters allowed).
    missing
        For each correction (bias, dark, flat), how many calibrated frames went without it.
    outputs
        Paths of the calibrated frames written.
    failures
        ``(path, reason)`` of each failed frame.
    plot
        The before/after PNG of a sample frame, when one was drawn.
    """

    frames: int = 0
    ok: int = 0
    unchanged: int = 0
    failed: int = 0
    without_masters: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    cosmic_pixels: int = 0
    gain_sources: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    plot: str | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- one frame

#: Raw layouts read straight from the file: (BITPIX, BZERO) -> big-endian type on disk.
_PLAIN_LAYOUTS = {(16, 0): ">i2", (16, 32768): ">i2", (-32, 0): ">f4"}


def read_raw_frame(path: Path | str, hdu: int = 0) -> tuple[np.ndarray, fits.Header]:
    """A raw image as float32 and its header; same values as :func:`read_image` (float32).

    The common camera layouts (uncompressed 16-bit integers with ``BZERO`` 0 or 32768, or
    float32, no ``BSCALE`` or ``BLANK``) are read from the data offset and converted in one
    pass, about half the CPU of astropy's scaled read; anything else, and any surprise
    (short file, compressed file), goes through :func:`read_image` and its errors.
    """
    path = Path(path)
    span = header_span(path, hdu)  # None for compressed files and other HDU types
    if span is None:
        return read_image(path, hdu=hdu, dtype=np.float32)
    header, _start, offset = span
    layout = _PLAIN_LAYOUTS.get((header.get("BITPIX"), header.get("BZERO", 0)))
    plain = (
        layout is not None
        and header.get("NAXIS") == 2
        and header.get("BSCALE", 1) == 1
        and "BLANK" not in header
        and header.get("XTENSION", "IMAGE") == "IMAGE"
    )
    if not plain:
        return read_image(path, hdu=hdu, dtype=np.float32)
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    raw = np.fromfile(path, dtype=layout, count=ny * nx, offset=int(offset))
    if raw.size != ny * nx or ny <= 0 or nx <= 0:  # truncated: let read_image name the problem
        return read_image(path, hdu=hdu, dtype=np.float32)
    data = np.empty((ny, nx), dtype=np.float32)
    np.add(raw.reshape(ny, nx), np.float32(header.get("BZERO", 0)), out=data, dtype=np.float32)
    return data, header


def check_finite(raw: np.ndarray, path: Path | str) -> None:
    """Refuse a raw frame that is corrupt: no finite pixel, any infinite pixel (a camera writes
    none), or more NaN than valid pixels. A few NaN pixels (a "no data" marker of some programs)
    are left to the calibration, which flags them ``NO_DATA``.

    Raises
    ------
    CalibrationError
        Naming the file, what is wrong and what to do.
    """
    finite = np.isfinite(raw)
    n_bad = raw.size - int(np.count_nonzero(finite))
    if n_bad == 0:
        return
    hint = "a corrupt frame: re-copy it from the camera, or move it out of the night folder"
    if n_bad == raw.size:
        raise CalibrationError("no finite pixel: every pixel is NaN or infinite", path=path, hint=hint)
    n_inf = int(np.count_nonzero(np.isinf(raw)))
    if n_inf:
        raise CalibrationError(
            f"{n_inf} pixels are infinite (+inf or -inf), which no camera writes: not calibrated",
            path=path,
            hint=hint,
        )
    if n_bad * 2 > raw.size:
        raise CalibrationError(f"{100 * n_bad / raw.size:.0f} % of the pixels are NaN", path=path, hint=hint)


def _header_number(header: fits.Header, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


def calibrate_frame(job: FrameJob, settings: Settings, cache: MasterCache) -> FrameOutcome:
    """Calibrate one light frame and write its product; errors become a failed outcome.

    Parameters
    ----------
    job
        The frame, its chosen masters and its output path.
    settings
        The effective settings (camera and calibration sections are used).
    cache
        Master planes already read.

    Returns
    -------
    FrameOutcome
        ``ok`` with the output path and details, or ``failed`` with the reason. A bad frame
        never raises.
    """
    start = time.perf_counter()
    try:
        details = _calibrate_and_write(job, settings, cache)
    except (NightpipeError, OSError, ValueError, MemoryError) as exc:
        reason = str(exc)
        if not isinstance(exc, NightpipeError) or exc.path is None:
            reason = f"{job.path}: {reason}"
        log.warning("calibrate: %s", reason)
        return FrameOutcome(job.frame_id, job.path, "failed", reason, seconds=time.perf_counter() - start)
    return FrameOutcome(
        job.frame_id,
        job.path,
        "ok",
        output=str(job.output),
        details=details,
        seconds=time.perf_counter() - start,
    )


def _calibrate_and_write(job: FrameJob, settings: Settings, cache: MasterCache) -> dict[str, Any]:
    cal, cam = settings.calibration, settings.camera
    raw, header = read_raw_frame(job.path, hdu=job.hdu)
    check_finite(raw, job.path)
    shape = (raw.shape[0], raw.shape[1])
    plan = plan_overscan(header, shape, cal, path=job.path)
    data = apply_overscan(raw, plan) if plan.active else raw
    det = job.detector
    gain, saturation = det.gain.value, det.saturation.value
    exptime = job.exptime if job.exptime is not None else _header_number(header, ("EXPTIME", "EXPOSURE"))
    if exptime is None and "dark" in job.masters:
        raise CalibrationError(
            "no exposure time: the dark cannot be scaled", path=job.path, hint="add EXPTIME to the header"
        )
    overscan_done = plan.biassec is not None
    params = ApplyParams(
        exptime=exptime or 0.0,
        gain=gain,
        read_noise=det.read_noise.value,
        # with the overscan removed, saturation is judged on the raw values below
        saturation=np.inf if overscan_done else saturation,
        nonlinear_level=np.inf if overscan_done else cam.nonlinear_fraction * saturation,
        to_electrons=cal.to_electrons,
        min_flat=cal.min_flat_level,
        exposure_tolerance=cal.exposure_tolerance,
        dark_scaling=cal.dark_scaling,
    )
    try:
        masters = master_arrays(job.masters, cache, (data.shape[0], data.shape[1]), cal.min_flat_level)
        result = apply_calibration(data, masters, params, check_masters=False)
    except CalibrationError as exc:
        raise CalibrationError(exc.message, path=job.path, hint=exc.hint) from None
    if overscan_done:
        raw_kept = trim(raw, plan.trimsec) if plan.trimsec is not None else raw
        result.mask[raw_kept >= saturation] |= np.uint16(PixelFlag.SATURATED)
        nonlinear = (raw_kept >= cam.nonlinear_fraction * saturation) & (raw_kept < saturation)
        result.mask[nonlinear] |= np.uint16(PixelFlag.NONLINEAR)
    cosmic = _cosmics(result, settings, params, saturation)
    history = history_lines(job, result, plan.describe(), params)
    if cosmic:
        history.append(
            f"cosmic rays ({cosmic['mode']} L.A.Cosmic, sigclip {cal.cosmic_sigclip:g}, objlim "
            f"{cal.cosmic_objlim:g}): {cosmic['pixels']} pixels flagged"
            + (", cleaned" if cal.cosmic_clean else ", masked only")
        )
    keywords = product_keywords(job, result, params, cosmic)
    write_calibrated(
        job.output,
        result.data,
        result.uncertainty,
        result.mask,
        science_header(header, keywords),
        history,
    )
    return {
        "masters": {kind: ref.path for kind, ref in job.masters.items()},
        "missing": dict(job.missing),
        "bias_coeff": result.bias_coeff,
        "dark_scale": result.dark_coeff,
        "unit": result.unit,
        **det.details(),
        "flags": flag_counts(result.mask),
        "cosmic": cosmic,
        "overscan": plan.describe(),
    }


def _cosmics(
    result: Calibrated, settings: Settings, applied: ApplyParams, saturation: float
) -> dict[str, Any]:
    cal = settings.calibration
    if cal.cosmic_rays == "off":
        return {}
    in_electrons = result.unit == "electron"
    gain = applied.gain
    params = CosmicParams(
        gain=1.0 if in_electrons else gain,
        read_noise=applied.read_noise,
        sigclip=cal.cosmic_sigclip,
        objlim=cal.cosmic_objlim,
        saturation=saturation * (gain if in_electrons else 1.0),
        clean=cal.cosmic_clean,
    )
    bad_bits = np.uint16(BAD_PIXEL_FLAGS | PixelFlag.NO_DATA)
    found = detect_cosmics(
        result.data, cal.cosmic_rays, params, inmask=result.mask != 0, bad=(result.mask & bad_bits) != 0
    )
    if found is None:
        return {}
    result.mask[found.mask] |= np.uint16(PixelFlag.COSMIC_RAY)
    if found.cleaned is not None:
        result.data[found.mask] = found.cleaned[found.mask]
    return {
        "mode": found.mode,
        "pixels": found.npixels,
        "examined_fraction": round(found.examined_fraction, 4),
        "psf_fwhm": round(found.extra.get("psf_fwhm", 0.0), 3),
    }


# --------------------------------------------------------------------------- for map_frames


class FrameCalibrator:
    """The per-frame function given to ``map_frames``: picklable, one master cache per thread.

    With several frames in flight (``parallel.threads > 1``) each frame's compiled kernel runs
    on one thread: the frames already use the cores, and OpenMP teams of two per frame
    thread only oversubscribe them (more CPU, no faster).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._single = settings.parallel.threads > 1

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._local = threading.local()
        self._single = False  # a Dask worker process: its own cores

    def __call__(self, job: FrameJob) -> FrameOutcome:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = MasterCache()
            if self._single and threading.current_thread() is not threading.main_thread():
                numba.set_num_threads(1)  # thread-local in numba: this pool thread only
        return calibrate_frame(job, self.settings, cache)
