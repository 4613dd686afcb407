"""Filling the answer cache ahead of a night (``nightpipe catalog fetch``), online."""

from __future__ import annotations

from datetime import datetime, timedelta

from nightpipe.config import Settings
from nightpipe.identify.lookup import FieldLookup, configured_services
from nightpipe.identify.night_input import night_sky
from nightpipe.identify.service import FieldQuery
from nightpipe.identify.solar_system import epochs
from nightpipe.store.db import Database


def _fill(lookup: FieldLookup, field: FieldQuery, jds: list[float], cadence_min: float) -> list[str]:
    for name, service in lookup.services.items():
        if service.per_epoch:
            for jd in epochs(jds, cadence_min):
                lookup.answer(name, FieldQuery(field.ra, field.dec, field.radius_deg, epoch_jd=jd))
        else:
            lookup.answer(name, field)
    return lookup.summary()


def prefetch_field(
    settings: Settings, ra: float, dec: float, radius_deg: float, *, start_iso: str | None, hours: float
) -> list[str]:
    """Ask every service about a cone; SkyBoT over a planned night starting at ``start_iso`` (UTC)."""
    from astropy.time import Time

    services = configured_services(settings.identify)
    jds: list[float] = []
    if start_iso is not None:
        start = datetime.fromisoformat(start_iso)
        step_min = settings.identify.skybot_cadence_min or 10.0
        count = int(hours * 60 / step_min) + 1
        jds = [float(Time(start + timedelta(minutes=k * step_min)).jd) for k in range(count)]
    else:
        services = [s for s in services if not s.per_epoch]
    lookup = FieldLookup(settings.identify, settings.paths.cache, offline=False, services=services)
    middle = float(jds[len(jds) // 2]) if jds else None
    field = FieldQuery(ra, dec, radius_deg, epoch_jd=middle)
    return _fill(lookup, field, jds, settings.identify.skybot_cadence_min)


def prefetch_night(settings: Settings, db: Database, night: str) -> list[str]:
    """Ask every service about a measured night's field and its frames' epochs."""
    sky = night_sky(db, night, settings.identify.margin_arcmin / 60.0)
    if sky is None:
        from nightpipe.errors import ConfigError

        raise ConfigError(f"night {night} has no solved and measured frame", hint="run the night first")
    lookup = FieldLookup(settings.identify, settings.paths.cache, offline=False)
    field = FieldQuery(sky.centre[0], sky.centre[1], sky.radius_deg, epoch_jd=sky.epoch_jd)
    return _fill(lookup, field, [f.jd for f in sky.frames], settings.identify.skybot_cadence_min)
