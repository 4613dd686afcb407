"""Where and what a frame looked at: the observatory location from the header or the settings
(:func:`resolve_location`, with its sign checks) and the configured target a frame's OBJECT
names (:func:`match_target`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nightpipe.config import ObservatoryConfig, TargetConfig


def resolve_location(
    lat: float | None,
    lon: float | None,
    elev: float | None,
    observatory: ObservatoryConfig,
    *,
    local_offset_hours: float | None = None,
) -> tuple[float, float, float, str]:
    """The observatory position used for a frame: ``(lat, lon_east, elevation_m, source)``.

    The header position is used when it has one, else the configured observatory.
    Longitude signs are not reliable in headers (some software writes west-positive
    values): a header longitude is negated when the negated value is the configured
    observatory's, or when a local-time offset in the header (``-0700``) says the site
    is on the other side of Greenwich.

    Examples
    --------
    >>> obs = ObservatoryConfig(latitude=31.68, longitude=-110.88)
    >>> resolve_location(31.68, 110.88, None, obs)[1]
    -110.88
    """
    if lat is None or lon is None:
        return observatory.latitude, _wrap(observatory.longitude), observatory.elevation, "settings"
    height = elev if elev is not None and -500 < elev < 9000 else observatory.elevation
    conf_lon = _wrap(observatory.longitude)
    same_lat = abs(lat - observatory.latitude) < 0.5
    if same_lat and abs(_wrap(-lon - conf_lon)) < 0.5 and abs(_wrap(lon - conf_lon)) >= 0.5:
        return lat, -lon, height, "header (longitude sign flipped to match settings)"
    # time zones stray from longitude/15 by up to ~2 h near Greenwich (La Palma: -17.9 deg, UTC+1
    # in summer), so the offset only decides far from it, and when the flipped sign fits it
    if (
        local_offset_hours
        and abs(lon) > 30
        and (lon > 0) != (local_offset_hours > 0)
        and abs(-lon / 15.0 - local_offset_hours) < 3.0
    ):
        return lat, -lon, height, "header (longitude sign flipped to match the local-time offset)"
    return lat, lon, height, "header"


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def match_target(object_name: str | None, targets: Sequence[TargetConfig]) -> TargetConfig | None:
    """The configured target whose name matches OBJECT, ignoring case, spaces and dashes.

    Examples
    --------
    >>> t = TargetConfig(name="HAT-P-32", ra=31.04, dec=46.69)
    >>> match_target("HATP-32 ", [t]).name
    'HAT-P-32'
    """
    if not object_name:
        return None
    key = re.sub(r"[^a-z0-9]", "", object_name.lower())
    for target in targets:
        if key and re.sub(r"[^a-z0-9]", "", target.name.lower()) == key and target.ra is not None:
            return target
    return None
