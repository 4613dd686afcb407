"""Asking the services: cache first, the network when allowed, and an honest account of each.

:class:`FieldLookup` answers ``(service, query)`` from the answer cache when a fresh enough
answer is there; otherwise, unless offline, it fetches (throttled, with retries and back-off,
under a timeout), stores the raw answer and parses it. A service that fails is marked down
for the rest of the run, so a night of 142 frames waits for it once, not 142 times. Nothing
raises: every service ends with a :class:`ServiceOutcome` saying what was used or missed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from astropy.table import Table

from nightpipe.catalogs.answers import AnswerCache, StoredAnswer
from nightpipe.catalogs.remote import Throttle, call_with_retries
from nightpipe.config import IdentifyConfig
from nightpipe.errors import CatalogError
from nightpipe.identify.colibri import ColibriService
from nightpipe.identify.service import FieldQuery, Service
from nightpipe.identify.simbad import SimbadService
from nightpipe.identify.skybot import SkybotService
from nightpipe.identify.vizier_services import GaiaService, MilliquasService, VsxService

log = logging.getLogger(__name__)


def configured_services(config: IdentifyConfig) -> list[Service]:
    """The services named in ``identify.services``, set up from the configuration."""
    made: dict[str, Service] = {
        "simbad": SimbadService(),
        "vsx": VsxService(),
        "gaia": GaiaService(max_mag=config.gaia_max_mag),
        "milliquas": MilliquasService(),
        "skybot": SkybotService(location=config.observatory_code),
        "colibri": ColibriService(key=config.colibri_key),
    }
    return [made[name] for name in config.services]


@dataclass
class ServiceOutcome:
    """How one service served this run."""

    service: str
    from_cache: int = 0
    fetched: int = 0
    missed: int = 0
    stale: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """'used', 'partial' (some queries unanswered) or 'missed'."""
        answered = self.from_cache + self.fetched
        if answered and not self.missed:
            return "used"
        return "partial" if answered else "missed"

    def describe(self) -> str:
        """One line for the terminal and the report."""
        parts = [f"{self.service}: {self.status}"]
        tallies = (
            (self.from_cache, "from cache"),
            (self.fetched, "fetched"),
            (self.missed, "missed"),
            (self.stale, "stale"),
        )
        counts = [f"{n} {what}" for n, what in tallies if n]
        if counts:
            parts.append(f" ({', '.join(counts)})")
        if self.reasons:
            parts.append(f": {self.reasons[0]}")
        return "".join(parts)


class FieldLookup:
    """Answers of every configured service, cached on disk, with per-service outcomes."""

    def __init__(
        self,
        config: IdentifyConfig,
        cache_dir: str | object,
        *,
        offline: bool,
        services: Sequence[Service] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from pathlib import Path

        self.config = config
        self.offline = offline
        self.cache = AnswerCache(Path(str(cache_dir)))
        self.services: dict[str, Service] = {
            s.name: s for s in (services if services is not None else configured_services(config))
        }
        self.outcomes: dict[str, ServiceOutcome] = {n: ServiceOutcome(n) for n in self.services}
        self._down: dict[str, str] = {}
        self._throttles = {n: Throttle() for n in self.services}
        self._sleep = sleep
        self._clock = clock

    def answer(self, service: str, query: FieldQuery) -> Table | None:
        """The service's identification table for ``query``, or ``None`` (the reason is recorded)."""
        spec = self.services[service]
        outcome = self.outcomes[service]
        try:
            payload = spec.payload(query)
        except CatalogError as exc:
            return self._miss(outcome, str(exc))
        stored = self.cache.get(service, payload) or self.cache.covering(service, payload)
        fresh = stored is not None and stored.age_days() <= self.config.max_age_days
        if stored is not None and (fresh or self.offline or service in self._down):
            table = self._parse(spec, stored)
            if table is not None:
                outcome.from_cache += 1
                outcome.stale += 0 if fresh else 1
                return table
        if self.offline:
            return self._miss(outcome, "offline and not in the cache (run `nightpipe catalog fetch` online)")
        if service in self._down:
            return self._miss(outcome, self._down[service])
        return self._fetch(spec, payload, outcome, stored)

    def _fetch(
        self, spec: Service, payload: dict[str, object], outcome: ServiceOutcome, stale: StoredAnswer | None
    ) -> Table | None:
        try:
            raw = call_with_retries(
                lambda: spec.fetch(payload, self.config.timeout_s),
                label=spec.name,
                retries=self.config.retries,
                throttle=self._throttles[spec.name],
                sleep=self._sleep,
            )
            table = spec.parse(raw)
        except CatalogError as exc:
            self._down[spec.name] = f"unreachable: {exc}"
            log.warning("%s unavailable, the night goes on without it: %s", spec.name, exc)
            if stale is not None and (table := self._parse(spec, stale)) is not None:
                outcome.from_cache += 1
                outcome.stale += 1
                return table
            return self._miss(outcome, f"unreachable: {exc}")
        self.cache.put(spec.name, payload, raw, service_version=spec.version)
        outcome.fetched += 1
        return table

    def _parse(self, spec: Service, stored: StoredAnswer) -> Table | None:
        try:
            return spec.parse(stored.raw)
        except CatalogError as exc:
            log.warning("ignoring cached %s answer %s: %s", spec.name, stored.path.name, exc)
            return None

    @staticmethod
    def _miss(outcome: ServiceOutcome, reason: str) -> None:
        outcome.missed += 1
        if reason not in outcome.reasons:
            outcome.reasons.append(reason)

    def summary(self) -> list[str]:
        """One line per service."""
        return [o.describe() for o in self.outcomes.values()]

    def as_dict(self) -> Mapping[str, dict[str, object]]:
        """The outcomes as plain data (for the night's summary file and the report)."""
        return {
            name: {"status": o.status, "from_cache": o.from_cache, "fetched": o.fetched, "missed": o.missed,
                   "stale": o.stale, "reasons": list(o.reasons)}
            for name, o in self.outcomes.items()
        }  # fmt: skip
