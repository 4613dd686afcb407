"""Offline identification of tracks against MPCORB orbits: a coarse pass puts every orbit on the
sky at the night's middle (geocentric, no light time: one vectorised Kepler solve over all of them)
and keeps those near the field; the few left are placed exactly (site, light time) at each
detection's time, and a track takes the orbit whose positions follow it (O-C under a radius)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nightpipe.movers.comets import Comets
from nightpipe.movers.kepler import Site, astrometric
from nightpipe.movers.mpcorb import Orbits

if TYPE_CHECKING:
    from nightpipe.config import Settings

Track = tuple[np.ndarray, np.ndarray, np.ndarray]  # jd_utc, ra, dec of a track's detections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identification:
    """The orbit a track follows and the mean observed-minus-computed offsets."""

    packed: str
    name: str
    oc_ra_arcsec: float  # (O - C) in RA x cos(Dec)
    oc_dec_arcsec: float
    max_arcsec: float  # the largest separation over the track's detections
    source: str = "mpcorb"  # which file's orbit: "mpcorb" (MPCORB.DAT) or "comets" (CometEls.txt)


def separation_arcsec(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    """Great-circle separations (haversine), arcsec."""
    r1, d1, r2, d2 = (np.deg2rad(v) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.rad2deg(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0)


def near_field(
    orbits: Orbits | Comets, jd_utc: float, centre: tuple[float, float], radius_deg: float
) -> np.ndarray:
    """Indices of the orbits within ``radius_deg`` of the field centre at ``jd_utc`` (geocentric)."""
    ra, dec, _ = astrometric(orbits, np.array([jd_utc]), None, light_time=False)
    sep = separation_arcsec(
        ra[:, 0], dec[:, 0], np.full(ra.shape[0], centre[0]), np.full(ra.shape[0], centre[1])
    )
    return np.flatnonzero(sep < radius_deg * 3600.0)


def match_track(
    orbits: Orbits | Comets,
    jd_utc: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    site: Site | None,
    radius_arcsec: float,
) -> Identification | None:
    """The orbit whose predicted positions stay within ``radius_arcsec`` of every detection."""
    if not len(orbits):
        return None
    pra, pdec, _ = astrometric(orbits, jd_utc, site)
    sep = separation_arcsec(pra, pdec, ra[None, :], dec[None, :])
    worst = sep.max(axis=1)
    best = int(np.argmin(worst))
    if worst[best] > radius_arcsec:
        return None
    dra = ((ra - pra[best] + 180.0) % 360.0 - 180.0) * np.cos(np.deg2rad(dec)) * 3600.0
    ddec = (dec - pdec[best]) * 3600.0
    return Identification(
        str(orbits.packed[best]),
        str(orbits.name[best]),
        float(dra.mean()),
        float(ddec.mean()),
        float(worst[best]),
        "comets" if isinstance(orbits, Comets) else "mpcorb",
    )


def identify_with_orbits(
    orbits: Orbits | Comets,
    tracks: list[Track],
    site: Site | None,
    *,
    radius_arcsec: float,
    margin_deg: float = 1.0,
) -> list[Identification | None]:
    """One identification (or ``None``) per track, each given as (jd_utc, ra, dec) of its detections."""
    if not tracks or not len(orbits):
        return [None] * len(tracks)
    jd = np.concatenate([t[0] for t in tracks])
    ra = np.concatenate([t[1] for t in tracks])
    dec = np.concatenate([t[2] for t in tracks])
    from nightpipe.identify.night_input import field_of

    centre, field_radius = field_of(ra, dec)
    # the margin covers the topocentric parallax, the light time and the motion over the night
    keep = near_field(orbits, float(np.median(jd)), centre, float(field_radius) + margin_deg)
    near = orbits.take(keep)
    log.info("%s: %d of %d orbits near the field", type(orbits).__name__, len(near), len(orbits))
    return [match_track(near, *track, site, radius_arcsec) for track in tracks]


def identify_from_files(tracks: list[Track], settings: Settings) -> list[Identification | None]:
    """Per track, the orbit of ``movers.mpcorb`` it follows, else the comet of ``movers.comets``
    (``None`` for a track neither has, and for all without either file)."""
    from pathlib import Path

    from nightpipe.movers.comets import read_comets
    from nightpipe.movers.mpcorb import read_mpcorb

    cfg, where = settings.movers, settings.observatory
    site = Site(where.latitude, where.longitude, where.elevation)
    found: list[Identification | None] = [None] * len(tracks)
    if cfg.mpcorb is not None:
        orbits = read_mpcorb(Path(cfg.mpcorb), settings.paths.output / "movers" / "cache")
        found = identify_with_orbits(orbits, tracks, site, radius_arcsec=cfg.match_radius_arcsec)
    rest = [k for k, f in enumerate(found) if f is None]
    if cfg.comets is not None and rest:
        comets = read_comets(Path(cfg.comets))
        more = identify_with_orbits(
            comets, [tracks[k] for k in rest], site, radius_arcsec=cfg.match_radius_arcsec
        )
        for k, f in zip(rest, more, strict=True):
            found[k] = f
    return found
