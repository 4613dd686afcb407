"""The identify step: what is in a night's field, one query per service, cached, offline-first.

Products under ``<output>/identify/<night>/``:

- ``catalogue.ecsv``: the stars of the night's reference frame, each with its SIMBAD, VSX,
  Gaia DR3 (and Milliquas, Astro-Colibri) identity, separation and ambiguity count;
- ``variables.ecsv``: the known variables among them (vetoed as comparison stars);
- ``objects.ecsv``: every object of interest the services know in the field;
- ``solar_system.ecsv`` and ``bodies.ecsv``: SkyBoT's bodies per frame and per body;
- ``summary.json``: the field, the services used or missed (and why), the counts;
- ``field_map.png``: the field with the identified objects marked by type.

A service that cannot answer never stops the night: it is listed as missed, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.catalogs.answers import AnswerCache
from nightpipe.config import Settings
from nightpipe.frames.fitsio import atomic_path
from nightpipe.identify.catalogue import annotate, known_variables, objects_in_field
from nightpipe.identify.lookup import FieldLookup
from nightpipe.identify.night_input import NightSky, night_sky
from nightpipe.identify.service import FieldQuery
from nightpipe.identify.solar_system import bodies, match_frames
from nightpipe.identify.store_rows import store_identified
from nightpipe.identify.vetoes import VARIABLES, identify_dir
from nightpipe.progress import NullProgress, Progress
from nightpipe.store.db import Database
from nightpipe.store.steps import previous_input_hash, record_step

log = logging.getLogger(__name__)
STEP = "identify"


@dataclass(frozen=True)
class Identified:
    """What the step found for a night."""

    catalogue: Table
    variables: Table
    objects: Table
    solar_system: Table
    bodies: Table
    services: dict[str, dict[str, Any]]
    sky: NightSky


def identify_sky(sky: NightSky, lookup: FieldLookup, settings: Settings) -> Identified:
    """Ask every service about the night's field and match the answers to its sources."""
    config = settings.identify
    field = FieldQuery(sky.centre[0], sky.centre[1], sky.radius_deg, epoch_jd=sky.epoch_jd)
    answers: dict[str, Table] = {}
    for name, service in lookup.services.items():
        if service.per_epoch:
            continue
        table = lookup.answer(name, field)
        if table is not None:
            answers[name] = table
    floor = config.min_radius_arcsec
    catalogue = annotate(
        sky.reference, answers, epoch=sky.epoch_year, astrometric_err=sky.astrometric_err, floor=floor
    )
    per_frame = _solar_system(sky, lookup, config.skybot_cadence_min, floor)
    return Identified(
        catalogue=catalogue,
        variables=known_variables(catalogue),
        objects=objects_in_field(answers, sky.centre, sky.radius_deg),
        solar_system=per_frame,
        bodies=bodies(per_frame),
        services=dict(lookup.as_dict()),
        sky=sky,
    )


def _solar_system(sky: NightSky, lookup: FieldLookup, cadence_min: float, floor: float) -> Table:
    if "skybot" not in lookup.services:
        return match_frames([], lambda jd: None, cadence_min, centre=sky.centre, radius_deg=0.0,
                            astrometric_err=0.0, floor=floor)  # fmt: skip

    def answer_at(jd: float) -> Table | None:
        query = FieldQuery(sky.centre[0], sky.centre[1], sky.radius_deg, epoch_jd=jd)
        return lookup.answer("skybot", query)

    return match_frames(
        sky.frames,
        answer_at,
        cadence_min,
        centre=sky.centre,
        radius_deg=sky.radius_deg,
        astrometric_err=sky.astrometric_err,
        floor=floor,
    )


def write_products(found: Identified, folder: Path, night: str, lines: list[str]) -> dict[str, Any]:
    """Write the night's identification products; returns the summary (also ``summary.json``)."""
    from nightpipe.identify.plots import field_map

    tables = {
        "catalogue": found.catalogue,
        "variables": found.variables,
        "objects": found.objects,
        "solar_system": found.solar_system,
        "bodies": found.bodies,
    }
    for name, table in tables.items():
        filename = VARIABLES if name == "variables" else f"{name}.ecsv"
        with atomic_path(folder / filename, suffix=".ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    answered = any(o["from_cache"] or o["fetched"] for o in found.services.values())
    if answered:  # a map of the night's stars alone says nothing
        field_map(found, folder / "field_map.png", night)
    else:
        (folder / "field_map.png").unlink(missing_ok=True)
    summary: dict[str, Any] = {
        "night": night,
        "field": {"ra": round(found.sky.centre[0], 5), "dec": round(found.sky.centre[1], 5),
                  "radius_deg": round(found.sky.radius_deg, 4)},
        "services": found.services,
        "service_lines": lines,
        "stars": len(found.catalogue),
        "known_variables": len(found.variables),
        "objects": len(found.objects),
        "solar_system_bodies": len(found.bodies),
        "solar_system_seen": int((found.bodies["n_seen"] > 0).sum()) if len(found.bodies) else 0,
    }  # fmt: skip
    with atomic_path(folder / "summary.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary


def run_identify(
    settings: Settings,
    db: Database,
    *,
    night: str | None,
    progress: Progress | None = None,
    frame_id: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The identify step of ``nightpipe run`` (and ``nightpipe identify NIGHT|FRAME``).

    ``frame_id`` identifies one frame (products in ``identify/<night>/frame-<id>/``); ``force``
    runs even when ``identify.enabled`` is false (an explicit ``nightpipe identify``).
    """
    progress = progress or NullProgress()
    if night is None:
        return {"skipped": "no night"}
    if not force and (not settings.identify.enabled or not settings.identify.services):
        return {"skipped": "identify.enabled is false"}
    margin = settings.identify.margin_arcmin / 60.0
    sky = night_sky(db, night, margin, frame_id)
    if sky is None:
        log.warning("identify %s: no measured source has a sky position (no plate solution)", night)
        return {"skipped": "no solved and measured frame"}
    folder = identify_dir(settings, night) / (f"frame-{frame_id}" if frame_id is not None else "")
    digest = inputs_digest(settings, sky)
    if _unchanged(db, night, frame_id, digest, folder):
        log.info("identify %s: sources, settings and cached answers unchanged; products kept", night)
        return {"folder": str(folder), "unchanged": 1, **_counts(folder)}
    lookup = FieldLookup(settings.identify, settings.paths.cache, offline=settings.catalog.offline)
    progress.start(1, f"identify {night}")
    try:
        found = identify_sky(sky, lookup, settings)
        progress.advance(night)
    finally:
        progress.stop()
    write_products(found, folder, night, lookup.summary())
    with db.session() as session:
        store_identified(session, night, frame_id, found)
        record_step(session, step=STEP, status="ok", night=night, frame_id=frame_id, input_hash=digest,
                    output_path=str(folder), details={"services": found.services})  # fmt: skip
    for line in lookup.summary():
        log.info("identify %s: %s", night, line)
    return {"folder": str(folder), "unchanged": 0, **_counts(folder)}


def inputs_digest(settings: Settings, sky: NightSky) -> str:
    """A hash of what the products depend on: the sources, the settings and the cached answers."""
    digest = hashlib.sha256(settings.digest("identify", "catalog").encode())
    digest.update(np.ascontiguousarray(sky.reference["ra"], dtype=float).tobytes())
    digest.update(np.ascontiguousarray(sky.reference["dec"], dtype=float).tobytes())
    for frame in sky.frames:
        digest.update(f"{frame.frame_id}:{frame.jd:.6f}:{len(frame.ra)}".encode())
    digest.update(f"{sky.astrometric_err:.4f}".encode())
    for record in AnswerCache(settings.paths.cache).entries():
        digest.update(f"{record.parent.name}/{record.name}:{record.stat().st_size}".encode())
    return digest.hexdigest()[:32]


def _unchanged(db: Database, night: str, frame_id: int | None, digest: str, folder: Path) -> bool:
    with db.session() as session:
        previous = previous_input_hash(session, step=STEP, night=night, frame_id=frame_id)
    return previous == digest and (folder / "summary.json").is_file()


def _counts(folder: Path) -> dict[str, Any]:
    """The step's figures, from its summary file (the same on a rerun as on the first run)."""
    summary = json.loads((folder / "summary.json").read_text())
    return {
        "known_variables": summary["known_variables"],
        "objects": summary["objects"],
        "solar_system_bodies": summary["solar_system_bodies"],
        "services": "; ".join(summary["service_lines"]),
    }
