"""The ``photometry`` step: a source table and database rows for every calibrated frame of a night.

Calibrated frames are those with an ``ok`` ``calibrate`` step run (its ``output_path``). Each is
read (science, UNCERT, MASK), measured with :func:`~nightpipe.photometry.measure.measure_frame`,
given sky positions when its header holds a celestial WCS, and written to
``<output>/sources/<night>/<stem>.fits`` atomically; the ``measurements`` and
``photometry_frames`` tables get its rows. A frame whose file and settings did not change
since its last successful run is skipped. One bad frame is recorded as failed and the night
goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nightpipe.config import Settings
from nightpipe.errors import PhotometryError
from nightpipe.frames.detector import log_warnings, resolve_detector
from nightpipe.frames.fitsio import open_fits, read_image
from nightpipe.frames.headers import header_cards
from nightpipe.frames.headers.pointing import pier_side
from nightpipe.photometry.frame_sources import detection_key, detections_path, read_detections, source_stem
from nightpipe.photometry.measure import CameraParams, FrameMeasurement, measure_frame
from nightpipe.photometry.step_rows import (
    frame_summary,
    insert_measurements,
    measurement_rows,
)
from nightpipe.photometry.table import build_source_table, source_table_name, write_source_table
from nightpipe.pipeline.framestep import FrameTask, StepRecord, run_frame_step
from nightpipe.progress import Progress
from nightpipe.store.db import Database
from nightpipe.store.models import Frame
from nightpipe.store.models_photometry import Measurement, PhotometryFrame
from nightpipe.store.steps import calibrated_frames

log = logging.getLogger(__name__)

STEP = "photometry"


@dataclass(frozen=True)
class FrameImage:
    """The planes and header of one frame, as read for photometry."""

    data: np.ndarray
    mask: np.ndarray | None
    uncertainty: np.ndarray | None
    header: fits.Header
    path: Path

    @property
    def unit(self) -> str:
        """``adu`` or ``electron`` (from BUNIT)."""
        bunit = str(self.header.get("BUNIT", "adu")).strip().lower()
        return "electron" if bunit.startswith("electron") or bunit in {"e-", "e"} else "adu"


@dataclass
class PhotometrySummary:
    """The outcome of a photometry run."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    tables: list[Path] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def read_frame(path: Path | str) -> FrameImage:
    """Read a calibrated MEF frame (science, UNCERT, MASK) or a plain image.

    Raises
    ------
    FitsReadError
        When the file is not a readable FITS image or its planes disagree in shape.
    """
    from nightpipe.calib.calibrated_io import read_calibrated

    path = Path(path)
    with open_fits(path) as hdul:
        names = {hdu.name for hdu in hdul}
    if {"UNCERT", "MASK"} <= names:  # a calibrated frame
        cal = read_calibrated(path)
        mask = cal.mask.astype(np.uint16, copy=False)
        return FrameImage(data=cal.data, mask=mask, uncertainty=cal.uncertainty, header=cal.header, path=path)
    data, header = read_image(path)
    return FrameImage(data=data, mask=None, uncertainty=None, header=header, path=path)


def camera_params(
    settings: Settings, header: fits.Header, *, calibrated: bool, unit: str, name: str = "frame"
) -> CameraParams:
    """Gain, read noise and saturation of a frame, as calibration chose them.

    A calibrated frame says what its calibration used (``NPGAIN``, ``NPRDNOIS``); any other
    frame gets them the same way calibration would (:func:`~nightpipe.frames.detector.resolve_detector`:
    the configuration, else the header by dialect, else the defaults), never a CMOS ``GAIN``
    setting as electrons per ADU.
    """
    values = resolve_detector(header_cards(header), settings.camera, name=name)
    used_gain = _header_float(header, ("NPGAIN",)) if calibrated else None
    used_noise = _header_float(header, ("NPRDNOIS",)) if calibrated else None
    if used_gain is None:
        log_warnings(log, values.warnings)
    gain = 1.0 if unit == "electron" else (used_gain or values.gain.value)
    read_noise = used_noise if used_noise is not None else values.read_noise.value
    # calibrated frames carry SATURATED bits in their MASK; raw levels do not apply to them
    saturation = np.inf if calibrated else values.saturation.value
    return CameraParams(gain=float(gain), read_noise=float(read_noise), saturation=float(saturation))


def _header_float(header: fits.Header, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = header.get(key)
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if np.isfinite(number) and number > 0:
            return number
    return None


def sky_positions(
    header: fits.Header, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, float | None]:
    """RA/Dec (deg) of pixel positions and the pixel scale (arcsec/px) from a celestial WCS, if any."""
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    if not str(header.get("CTYPE1", "")).startswith("RA"):
        return None, None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header).celestial
        if not wcs.has_celestial:
            return None, None, None
        ra, dec = wcs.all_pix2world(x, y, 0)
        scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    except (ValueError, MemoryError, KeyError) as exc:
        log.warning("unusable WCS (%s); sources get no sky positions", exc)
        return None, None, None
    return np.asarray(ra), np.asarray(dec), scale


def frame_meta(
    frame: Frame | None,
    header: fits.Header,
    path: Path,
    settings: Settings,
    *,
    airmass: float | None = None,
) -> dict[str, Any]:
    """Times, exposure and airmass of a frame for the table's meta.

    ``airmass`` is the frame's airmass computed beforehand (see :func:`frame_airmasses`), used
    when the header has none; when ``None`` it is computed here.
    """
    meta: dict[str, Any] = {"frame": str(path)}
    if frame is not None:
        meta["mid_utc"] = frame.mid_utc.isoformat() if isinstance(frame.mid_utc, datetime) else None
        meta["jd_utc"] = frame.jd_utc
        meta["bjd_tdb"] = frame.bjd_tdb
        meta["exptime"] = frame.exptime
        meta["night"] = frame.night
        meta["frame_id"] = frame.id
    if meta.get("exptime") is None:
        meta["exptime"] = _header_float(header, ("EXPTIME", "EXPOSURE"))
    from_header = _header_float(header, ("AIRMASS", "SECZ"))
    if from_header is None and airmass is None and frame is not None:
        airmass = frame_airmasses(settings, [frame]).get(frame.id)
    meta["airmass"] = from_header if from_header is not None else airmass
    side = pier_side(header)
    if side is not None:  # a German equatorial mount's side: it changes at a meridian flip
        meta["pier_side"] = side
    return meta


def frame_airmasses(settings: Settings, frames: Sequence[Frame]) -> dict[int, float | None]:
    """The airmass of each frame from its pointing and mid-exposure time, in one transform.

    Frames without a pointing or a time, or below the horizon, get ``None``.
    """
    usable = [f for f in frames if f.ra is not None and f.dec is not None and f.mid_utc is not None]
    result: dict[int, float | None] = {f.id: None for f in frames}
    if not usable:
        return result
    from astropy.time import Time

    from nightpipe.frames.timing import altitudes_deg

    obs = settings.observatory
    ra = np.array([float(f.ra) for f in usable if f.ra is not None])
    dec = np.array([float(f.dec) for f in usable if f.dec is not None])
    jd = np.asarray(Time([f.mid_utc for f in usable], scale="utc").jd, dtype=float)
    alt = altitudes_deg(jd, ra, dec, obs.latitude, obs.longitude, obs.elevation)
    with np.errstate(divide="ignore"):
        secz = 1.0 / np.sin(np.radians(alt))
    for frame, a, s in zip(usable, alt, secz, strict=True):
        result[frame.id] = float(s) if a > 0 else None
    return result


def measure_file(
    path: Path | str,
    settings: Settings,
    *,
    frame: Frame | None = None,
    airmass: float | None = None,
    image: FrameImage | None = None,
    shared: Path | None = None,
) -> tuple[Table, FrameMeasurement]:
    """Measure one frame file and build its source table (nothing written).

    ``airmass``: the frame's airmass when already computed (see :func:`frame_meta`); ``image``:
    the file already read with :func:`read_frame`; ``shared``: the source list the solve step
    kept for this frame (:mod:`nightpipe.photometry.frame_sources`), reused when its key says it
    was found on these pixels with these settings, else the frame is detected here.

    Raises
    ------
    FitsReadError, PhotometryError
        With the file named.
    """
    image = image if image is not None else read_frame(path)
    calibrated = image.mask is not None
    cam = camera_params(settings, image.header, calibrated=calibrated, unit=image.unit, name=str(image.path))
    found = None
    if shared is not None:
        key = detection_key(image.data, image.mask, settings.photometry, cam.saturation)
        found = read_detections(shared, key)
        if found is None:
            log.debug("%s: no usable shared source list, detecting", image.path.name)
    try:
        meas = measure_frame(
            image.data,
            settings.photometry,
            mask=image.mask,
            uncertainty=image.uncertainty,
            uncertainty_includes_source=True,  # calibrate's UNCERT holds the Poisson noise of every pixel
            camera=cam,
            detections=found,
        )
    except PhotometryError as exc:
        raise PhotometryError(exc.message, path=image.path, hint=exc.hint) from None
    ra, dec, scale = sky_positions(image.header, meas.detections.x, meas.detections.y)
    if scale is None and settings.astrometry.pixel_scale:
        scale = settings.astrometry.pixel_scale
    meta = frame_meta(frame, image.header, image.path, settings, airmass=airmass)
    meta["gain"] = cam.gain  # e-/ADU of the measured data (1 for data in electrons)
    meta["photometry_settings"] = settings.to_dict()["photometry"]
    table = build_source_table(meas, ra=ra, dec=dec, unit=image.unit, pixel_scale=scale, meta=meta)
    return table, meas


def table_path(settings: Settings, night: str | None, source: Path) -> Path:
    """Where the source table of a frame goes: ``<output>/sources/<night>/<stem>.fits``."""
    stem = source_stem(source)
    return Path(settings.paths.output) / "sources" / (night or "unknown-night") / source_table_name(stem)


def shared_detections_path(settings: Settings, night: str | None, source: Path) -> Path:
    """Where the solve step keeps the source list of a calibrated frame for the photometry."""
    return detections_path(settings.paths.output, night, source)


def _input_hash(path: Path, settings: Settings) -> str:
    stat = path.stat()
    text = f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{settings.digest('photometry', 'camera')}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Job:
    """One calibrated frame to measure and where its table goes."""

    frame: Frame
    path: Path
    out: Path
    airmass: float | None = None


@dataclass(frozen=True)
class _Measured:
    """What a worker sends back: the database rows and summary of one frame (no images)."""

    rows: list[tuple[Any, ...]]
    summary: dict[str, Any]


class PhotometryStep:
    """The per-frame step (:class:`~nightpipe.pipeline.framestep.FrameStep`): measure a frame,
    write its source table; store its measurements and summary."""

    name = STEP
    store_batch = 16  # frames per transaction (a commit per frame cost as much as the inserts)
    retry_failed = True

    def __init__(self, settings: Settings, *, reuse_detections: bool = True) -> None:
        self.settings = settings
        self.reuse_detections = reuse_detections

    def process(self, job: _Job) -> _Measured:
        """Measure one frame and write its table (no database: runs on a worker)."""
        shared = (
            shared_detections_path(self.settings, job.frame.night, job.path)
            if self.reuse_detections
            else None
        )
        table, _meas = measure_file(
            job.path, self.settings, frame=job.frame, airmass=job.airmass, shared=shared
        )
        write_source_table(table, job.out)
        return _Measured(rows=measurement_rows(job.frame.id, table), summary=frame_summary(table))

    def store(self, session: Session, task: FrameTask[_Job], result: _Measured) -> StepRecord:
        """The frame's ``measurements`` and ``photometry_frames`` rows."""
        frame, out, info = task.item.frame, task.item.out, result.summary
        session.execute(delete(Measurement).where(Measurement.frame_id == frame.id))
        if result.rows:
            insert_measurements(session, result.rows)
        summary = session.scalars(select(PhotometryFrame).where(PhotometryFrame.frame_id == frame.id)).first()
        if summary is None:
            summary = PhotometryFrame(frame_id=frame.id)
            session.add(summary)
        summary.night = frame.night
        summary.table_path = str(out)
        summary.n_sources = info["n_sources"]
        summary.fwhm_px = info["fwhm_px"]
        summary.fwhm_arcsec = info["fwhm_arcsec"]
        summary.ellipticity = info["ellipticity"]
        summary.sky = info["sky"]
        summary.sky_rms = info["sky_rms"]
        summary.aper_radii_px = info["aper_radii_px"]
        summary.unit = info["unit"]
        summary.settings_hash = self.settings.digest("photometry", "camera")
        summary.software = info["software"]
        details = {"n_sources": info["n_sources"], "fwhm_px": info["fwhm_px"], "sky": info["sky"]}
        return StepRecord(output_path=str(out), details=details)


def run_photometry(
    settings: Settings,
    db: Database,
    *,
    night: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    client: Any = None,
    reuse_detections: bool = True,
) -> PhotometrySummary:
    """Measure every calibrated frame (of ``night``, or all), write tables and database rows.

    Frames are measured through :func:`nightpipe.pipeline.parallel.map_frames` (threads, or the
    workers of a Dask ``client``); the database is written in this process only.

    Parameters
    ----------
    settings
        The effective settings (``photometry``, ``camera``, ``paths``, ``observatory``).
    db
        The open database.
    night
        Only this night (``YYYY-MM-DD``); all nights when None.
    force
        Measure again even frames whose file and settings did not change.
    progress
        Progress sink (one advance per frame measured).
    client
        A ``distributed.Client``, or ``None`` for threads (``settings.parallel.threads``).
    reuse_detections
        Reuse the source list the solve step kept for a frame when it fits (else detect anew).

    Returns
    -------
    PhotometrySummary
    """
    with db.session() as session:
        found = [(frame, Path(str(run.output_path))) for frame, run in calibrated_frames(session, night)]
    found.sort(key=lambda job: (job[0].mid_utc is None, job[0].mid_utc or datetime.min, job[1].name))
    airmasses = frame_airmasses(settings, [frame for frame, _ in found])  # one transform for the night
    tasks = []
    for frame, path in found:
        out = table_path(settings, frame.night, path)
        job = _Job(frame, path, out, airmasses.get(frame.id))
        key = _input_hash(path, settings) if path.is_file() else ""
        tasks.append(FrameTask(frame.id, frame.night, key, job, str(path), outputs=(path, out)))
    tally = run_frame_step(
        PhotometryStep(settings, reuse_detections=reuse_detections),
        tasks,
        db,
        settings.parallel,
        force=force,
        client=client,
        progress=progress,
    )
    return PhotometrySummary(
        ok=tally.ok,
        failed=tally.failed,
        skipped=len(tally.skipped),
        tables=[task.item.out for task in tally.done],
        failures={task.label: reason for task, reason in tally.failures},
        seconds=tally.seconds,
    )
