"""The movers step: a night's moving objects, linked, measured, identified and reported to the MPC.

Reads the night's measured sources (database), keeps the transient ones (not static sky, not
flagged artefacts), links them into tracks, names each track after the SkyBoT body the
identify step predicted there (or gives it a temporary designation: a candidate), and writes
``movers/<night>/``: ``tracks.ecsv``, ``observations.ecsv``, ``<night>.mpc.txt`` (80-column
lines with the MPC's header lines) and ``<night>.ades.psv``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from astropy.table import Table
from sqlalchemy import func, select

from nightpipe.config import Settings
from nightpipe.frames.fitsio import atomic_path
from nightpipe.frames.flags import PixelFlag
from nightpipe.movers.designations import report_fields, unpack_number, unpack_provisional
from nightpipe.movers.linking import LinkOptions, Track, link
from nightpipe.movers.mpc import Observation, ades_psv, mpc80_line
from nightpipe.movers.transients import Detections, transients
from nightpipe.store.db import Database
from nightpipe.store.models import Frame
from nightpipe.store.models_astrometry import PlateSolution
from nightpipe.store.models_calphot import CalibratedMag
from nightpipe.store.models_photometry import Measurement

log = logging.getLogger(__name__)
STEP = "movers"
# cosmic rays are the transients that are not movers; hot pixels and bad columns stay in place
# (the static-sky test removes them), and a mover crossing one is still a good measurement
ARTEFACTS = int(PixelFlag.COSMIC_RAY)
TRACK_COLUMNS: tuple[str, ...] = ("designation", "number", "n", "rate_arcsec_min", "position_angle_deg")
TRACK_COLUMNS += ("rms_arcsec", "mag", "identified", "source", "oc_ra_arcsec", "oc_dec_arcsec")
TRACK_TYPES = (str, str, int, float, float, float, float, bool, str, float, float)
OBS_COLUMNS = ("object", "jd_utc", "ra", "dec", "sigma_arcsec", "mag")
OBS_TYPES = (str, float, float, float, float, float)


@dataclass(frozen=True)
class NightDetections:
    """Every solved detection of the night, its magnitude where calibrated, and the night's scales."""

    det: Detections
    mag: np.ndarray
    mag_err: np.ndarray
    band: str
    frames: int
    centre: tuple[float, float]
    fwhm_arcsec: float


def read_detections(db: Database, night: str) -> NightDetections | None:
    """The night's detections with sky positions (``None`` without plate solutions)."""
    with db.session() as session:
        rows = session.execute(
            select(
                Measurement.frame_id,
                Measurement.source_index,
                Measurement.ra,
                Measurement.dec,
                Measurement.fwhm,
                Measurement.flux,
                Measurement.flux_err,
                Measurement.flags,
                Frame.jd_utc,
            )
            .join(Frame, Frame.id == Measurement.frame_id)
            .where(Frame.night == night, Measurement.ra.is_not(None), Frame.jd_utc.is_not(None))
        ).all()
        calibrated = session.execute(
            select(
                CalibratedMag.frame_id,
                CalibratedMag.source_id,
                CalibratedMag.mag,
                CalibratedMag.mag_err,
                CalibratedMag.band,
            )
            .join(Frame, Frame.id == CalibratedMag.frame_id)
            .where(Frame.night == night)
        )
        mags = {(int(f), int(s)): (m, e, b) for f, s, m, e, b in calibrated}
        solved = session.execute(
            select(func.avg(PlateSolution.rms_arcsec), func.avg(PlateSolution.pixel_scale)).where(
                PlateSolution.night == night, PlateSolution.solved.is_(True)
            )
        ).one()
    if not rows:
        return None
    rms, scale = float(solved[0] or 1.0), float(solved[1] or 1.0)
    frame = np.array([r[0] for r in rows], dtype=np.int64)
    index = np.array([r[1] for r in rows], dtype=np.int64)
    fwhm_px = np.array([r[4] if r[4] is not None else np.nan for r in rows], dtype=float)
    snr = np.array([_snr(r[5], r[6]) for r in rows])
    fwhm = float(np.nanmedian(fwhm_px)) if np.isfinite(fwhm_px).any() else 3.0
    centroid = fwhm * scale / (2.355 * np.maximum(snr, 1.0))  # arcsec, the centroid error of a Gaussian
    det = Detections(
        frame,
        np.array([r[8] for r in rows], float),
        np.array([r[2] for r in rows], float),
        np.array([r[3] for r in rows], float),
        np.hypot(centroid, rms),
        index,
        np.array([r[7] or 0 for r in rows], dtype=np.int64),
    )
    found = [mags.get((int(f), int(s))) for f, s in zip(frame, index, strict=True)]
    mag = np.array([m[0] if m else np.nan for m in found], float)
    mag_err = np.array([m[1] if m else np.nan for m in found], float)
    bands = [m[2] for m in found if m]
    from nightpipe.identify.night_input import field_of

    centre, _ = field_of(det.ra, det.dec)
    return NightDetections(
        det,
        mag,
        mag_err,
        max(set(bands), key=bands.count) if bands else "",
        int(np.unique(frame).size),
        centre,
        fwhm * scale,
    )


def _snr(flux: Any, err: Any) -> float:
    if not flux or not err:
        return 1.0
    k = len(flux) // 2
    f, e = flux[k], err[k]
    return float(f / e) if f is not None and e and f > 0 else 1.0


def find_tracks(
    night: NightDetections, settings: Settings
) -> tuple[Detections, list[Track], NightDetections]:
    """The transient detections and the tracks linked from them."""
    cfg = settings.movers
    radius = max(2.0, 1.5 * night.fwhm_arcsec)
    min_frames = max(3, int(np.ceil(cfg.static_fraction * night.frames)))
    keep = _transient_rows(night.det, radius, min_frames)
    moving = night.det.subset(keep)
    opts = LinkOptions(
        max_rate_arcsec_min=cfg.max_rate_arcsec_min,
        min_detections=cfg.min_detections,
        tolerance_arcsec=max(1.0, 0.5 * night.fwhm_arcsec),
        min_motion_arcsec=2.0 * night.fwhm_arcsec,
    )
    subset = NightDetections(
        moving,
        night.mag[keep],
        night.mag_err[keep],
        night.band,
        night.frames,
        night.centre,
        night.fwhm_arcsec,
    )
    return moving, link(moving, night.centre, opts), subset


def _transient_rows(det: Detections, radius: float, min_frames: int) -> np.ndarray:
    """Row indices of the transient detections (the same selection as :func:`transients`)."""
    tagged = Detections(
        det.frame, det.jd, det.ra, det.dec, det.sigma_arcsec, np.arange(len(det), dtype=np.int64), det.flags
    )
    return np.asarray(
        transients(tagged, radius_arcsec=radius, min_frames=min_frames, bad_flags=ARTEFACTS).source_index,
        dtype=np.int64,
    )


class TrackName(NamedTuple):
    """What a track is: a known body (designation, number) with its O-C, or a candidate."""

    designation: str  # readable: "2019 RB21", "(1) Ceres", or a temporary "NP00001"
    number: str  # the minor-planet number, unpacked ('' when unnumbered)
    source: str  # "skybot", "mpcorb", "comets" or "" (a candidate)
    oc_ra_arcsec: float = float("nan")
    oc_dec_arcsec: float = float("nan")


def identify_tracks(
    tracks: list[Track],
    moving: Detections,
    bodies: Table | None,
    settings: Settings | None = None,
) -> list[TrackName]:
    """Per track: the SkyBoT body seen on most of its frames, else the MPCORB orbit it follows
    (``movers.mpcorb``), else a candidate with a temporary designation."""
    out: list[TrackName] = []
    seen: dict[tuple[int, int], tuple[str, str]] = {}
    if bodies is not None and len(bodies):
        seen = {
            (int(f), int(s)): (str(n), str(num))
            for f, s, n, num in zip(
                bodies["frame_id"], bodies["source_index"], bodies["name"], bodies["number"], strict=True
            )
            if int(s) >= 0
        }
    orbital = _orbit_identifications(tracks, moving, settings)
    for k, track in enumerate(tracks):
        names = [
            seen[key]
            for m in track.members
            if (key := (int(moving.frame[m]), int(moving.source_index[m]))) in seen
        ]
        found = orbital[k]
        if names and len(names) * 2 >= track.members.size:
            name, number = max(set(names), key=names.count)
            number = "" if number in ("-", "--", "None") else number
            if found is not None and (found.name == name or unpack_number(found.packed) == number):
                out.append(TrackName(name, number, "skybot", found.oc_ra_arcsec, found.oc_dec_arcsec))
            else:
                out.append(TrackName(name, number, "skybot"))
        elif found is not None:
            number = unpack_number(found.packed)
            name = found.name if number or found.source == "comets" else unpack_provisional(found.packed)
            out.append(TrackName(name, number, found.source, found.oc_ra_arcsec, found.oc_dec_arcsec))
        else:
            out.append(TrackName(f"NP{k + 1:05d}", "", ""))
    return out


def _orbit_identifications(tracks: list[Track], moving: Detections, settings: Settings | None) -> list[Any]:
    """Identifications by orbit per track (all ``None`` without ``movers.mpcorb`` and ``movers.comets``)."""
    if settings is None or not tracks:
        return [None] * len(tracks)
    from nightpipe.movers.orbit_match import identify_from_files

    per_track = [(moving.jd[t.members], moving.ra[t.members], moving.dec[t.members]) for t in tracks]
    return identify_from_files(per_track, settings)


def write_products(
    folder: Path,
    night: str,
    settings: Settings,
    tracks: list[Track],
    moving: NightDetections,
    names: list[TrackName],
) -> dict[str, Any]:
    """tracks.ecsv, observations.ecsv and the MPC and ADES reports."""
    station = settings.identify.observatory_code
    observer = settings.movers.observer or settings.observatory.name
    rows, observations, objects = [], [], []
    for track, who in zip(tracks, names, strict=True):
        name, number = who.designation, who.number
        mags = moving.mag[track.members]
        rows.append(
            (
                name,
                number,
                int(track.members.size),
                track.rate_arcsec_min,
                track.position_angle_deg,
                track.rms_arcsec,
                float(np.nanmedian(mags)) if np.isfinite(mags).any() else np.nan,
                who.source != "",
                who.source,
                who.oc_ra_arcsec,
                who.oc_dec_arcsec,
            )
        )
        for m in track.members:
            det = moving.det
            objects.append(name)
            mag = float(moving.mag[m]) if np.isfinite(moving.mag[m]) else None
            packed_number, packed_designation = report_fields(name, number)
            observations.append(
                Observation(
                    designation=packed_designation,
                    number=packed_number,
                    jd_utc=float(det.jd[m]),
                    ra=float(det.ra[m]),
                    dec=float(det.dec[m]),
                    mag=mag,
                    band=moving.band[:1] or " ",
                    station=station,
                    rms_ra_arcsec=float(det.sigma_arcsec[m]),
                    rms_dec_arcsec=float(det.sigma_arcsec[m]),
                    rms_mag=float(moving.mag_err[m]) if mag is not None else None,
                )
            )
    track_table = Table(rows=rows, names=TRACK_COLUMNS, dtype=TRACK_TYPES)
    obs_rows = [
        (who, o.jd_utc, o.ra, o.dec, o.rms_ra_arcsec, o.mag)
        for who, o in zip(objects, observations, strict=True)
    ]
    obs_table = Table(rows=obs_rows, names=OBS_COLUMNS, dtype=OBS_TYPES)
    for table, name in ((track_table, "tracks.ecsv"), (obs_table, "observations.ecsv")):
        with atomic_path(folder / name, suffix=".ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    header = [
        f"COD {station}",
        f"OBS {observer}",
        f"MEA {observer}",
        f"TEL {settings.observatory.name}",
        "NET Gaia DR3",
        f"ACK nightpipe {night}",
    ]
    with atomic_path(folder / f"{night}.mpc.txt", suffix=".txt") as tmp:
        tmp.write_text("\n".join(header + [mpc80_line(o) for o in observations]) + "\n")
    with atomic_path(folder / f"{night}.ades.psv", suffix=".psv") as tmp:
        tmp.write_text(ades_psv(observations, observer=observer, site_code=station, catalogue="Gaia3"))
    from nightpipe.movers.ades_xml import Telescope, ades_xml

    cfg = settings.movers
    scope = None
    if cfg.aperture_m is not None:
        scope = Telescope(cfg.telescope_design, cfg.aperture_m, cfg.detector, settings.observatory.name)
    else:
        log.warning("movers.aperture_m is not set: the ADES XML has no telescope block the MPC requires")
    xml = ades_xml(observations, observer=observer, site_code=station, catalogue="Gaia3", telescope=scope)
    with atomic_path(folder / f"{night}.ades.xml", suffix=".xml") as tmp:
        tmp.write_text(xml)
    return {
        "tracks": len(tracks),
        "identified": int(sum(1 for r in rows if r[7])),
        "observations": len(observations),
    }


def _digest(settings: Settings, night: NightDetections, bodies: Path) -> str:
    """What the products depend on: the detections, the settings and the identified bodies."""
    import hashlib

    digest = hashlib.sha256(settings.digest("movers", "identify", "observatory").encode())
    for array in (night.det.frame, night.det.ra, night.det.dec, night.det.flags, night.mag):
        digest.update(np.ascontiguousarray(array).tobytes())
    if bodies.is_file():
        digest.update(bodies.read_bytes())
    return digest.hexdigest()[:32]


def _unchanged(db: Database, night: str, digest: str, folder: Path) -> bool:
    from nightpipe.store.steps import previous_input_hash

    with db.session() as session:
        previous = previous_input_hash(session, step=STEP, night=night)
    return previous == digest and (folder / "tracks.ecsv").is_file()


def run_movers(settings: Settings, db: Database, *, night: str | None, force: bool = False) -> dict[str, Any]:
    """The movers step of ``nightpipe run`` (when ``movers.enabled``) and ``nightpipe movers NIGHT``."""
    if night is None:
        return {"skipped": "no night"}
    if not (force or settings.movers.enabled):
        return {"skipped": "movers.enabled is false"}
    night_det = read_detections(db, night)
    if night_det is None:
        return {"skipped": "no solved and measured frame"}
    from nightpipe.identify.vetoes import identify_dir

    bodies_file = identify_dir(settings, night) / "solar_system.ecsv"
    folder = settings.paths.output / "movers" / night
    digest = _digest(settings, night_det, bodies_file)
    if _unchanged(db, night, digest, folder):
        return {"skipped": 0, "unchanged": 1, "folder": str(folder)}
    moving, tracks, subset = find_tracks(night_det, settings)
    synthetic: dict[str, float] = {}
    if settings.movers.synthetic:
        from nightpipe.movers.synthetic_step import add_faint_tracks

        moving, tracks, subset, synthetic = add_faint_tracks(settings, db, night, moving, tracks, subset)
    bodies = Table.read(bodies_file, format="ascii.ecsv") if bodies_file.is_file() else None
    names = identify_tracks(tracks, moving, bodies, settings)
    summary = {**write_products(folder, night, settings, tracks, subset, names), **synthetic}
    from nightpipe.movers.strips import write_strips

    strips = write_strips(
        db, settings.paths.output, night, folder, tracks, moving, [n.designation for n in names]
    )
    summary["strips"] = len(strips)
    from nightpipe.store.steps import record_step

    with db.session() as session:
        record_step(
            session,
            step=STEP,
            status="ok",
            night=night,
            input_hash=digest,
            output_path=str(folder),
            details=summary,
        )
    log.info(
        "movers %s: %d transient detections, %d tracks (%d identified)",
        night,
        len(moving),
        summary["tracks"],
        summary["identified"],
    )
    return {"transients": len(moving), **summary, "folder": str(folder)}
