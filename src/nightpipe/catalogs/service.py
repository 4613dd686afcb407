"""One interface to every reference catalogue: cache first, then the network, then the next one.

:class:`ReferenceCatalogs` answers cone queries from the catalogues named in
``settings.catalog.order``. Each remote answer is cached on disk (keyed by the query), so
a second run, and every test, works offline. When a catalogue cannot answer (offline and
not cached, network failure after retries), the next one in the order is tried; when none
can, a :class:`~nightpipe.errors.CatalogError` lists why each failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.catalogs import vizier
from nightpipe.catalogs.cache import CatalogCache
from nightpipe.catalogs.propermotion import at_epoch
from nightpipe.catalogs.remote import Throttle, call_with_retries
from nightpipe.catalogs.schema import standard_table
from nightpipe.config import CatalogConfig
from nightpipe.errors import CatalogError

log = logging.getLogger(__name__)

Fetcher = Callable[[vizier.VizierSpec, Mapping[str, Any]], Table]
LocalCone = Callable[[float, float, float, float | None], Table]


def tycho2_vt_error(vt: np.ndarray) -> np.ndarray:
    """Typical Tycho-2 VT error: 0.013 mag for bright stars, about 0.1 at VT 11, 0.25 at VT 12.

    The index files carry no errors; this follows the precision of Tycho-2 photometry
    (Hog et al. 2000) so that faint, poorly measured catalogue stars weigh less in fits.
    """
    vt = np.asarray(vt, float)
    return np.asarray(0.013 + 0.1 * 10 ** (0.4 * (vt - 11.0)))


def tycho2_cone(index_dirs: tuple[Path, ...]) -> LocalCone:
    """An offline cone search over the Tycho-2 stars in astrometry.net index files (band VT)."""
    from nightpipe.astrometry.index_catalog import IndexCatalog

    catalog = IndexCatalog.from_dirs(index_dirs, max_files=None)

    def cone(ra: float, dec: float, radius_deg: float, mag_limit: float | None) -> Table:
        stars = catalog.cone(ra, dec, radius_deg, max_mag=mag_limit)
        return standard_table(
            ids=np.array([f"tyc2-idx-{i}" for i in range(len(stars))]),
            ra=stars.ra,
            dec=stars.dec,
            mags={"VT": stars.mag},
            errors={"VT": tycho2_vt_error(stars.mag)},
            catalog="tycho2",
            epoch=2000.0,
        )

    return cone


class ReferenceCatalogs:
    """Cone queries over the configured catalogues, cached, with fall-backs.

    Parameters
    ----------
    config
        ``settings.catalog`` (order, offline, timeout, retries).
    cache_dir
        Root of the on-disk cache (``settings.paths.cache``).
    fetcher
        How remote answers are obtained; defaults to VizieR through astroquery. Tests
        pass a function returning recorded answers.
    local
        Offline catalogues by name (``tycho2`` from index files), tried without a network.
    """

    def __init__(
        self,
        config: CatalogConfig,
        cache_dir: Path,
        *,
        fetcher: Fetcher | None = None,
        local: Mapping[str, LocalCone] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.cache = CatalogCache(cache_dir)
        self.fetcher = fetcher or (
            lambda spec, payload: vizier.fetch(spec, payload, timeout_s=config.timeout_s)
        )
        self.local = dict(local or {})
        self._sleep = sleep
        self._throttle = Throttle()

    def cone(
        self,
        ra: float,
        dec: float,
        radius_deg: float,
        *,
        mag_limit: float | None = None,
        epoch: float | None = None,
        order: tuple[str, ...] | None = None,
    ) -> Table:
        """Stars within ``radius_deg`` of (ra, dec) from the first catalogue that can answer.

        Positions are moved to ``epoch`` (Julian year) when given.
        """
        reasons: list[str] = []
        for name in order or self.config.order:
            try:
                table = self._one(name, ra, dec, radius_deg, mag_limit)
            except CatalogError as exc:
                reasons.append(f"{name}: {exc}")
                log.warning("catalogue %s unavailable: %s", name, exc)
                continue
            return at_epoch(table, epoch) if epoch is not None else table
        raise CatalogError(
            "no reference catalogue could answer: " + "; ".join(reasons),
            hint="go online once to fill the cache, "
            "or add 'tycho2' (offline, from index files) to catalog.order",
        )

    def _one(self, name: str, ra: float, dec: float, radius_deg: float, mag_limit: float | None) -> Table:
        if name in self.local:
            try:
                return self.local[name](ra, dec, radius_deg, mag_limit)
            except CatalogError:
                if name not in vizier.SPECS:
                    raise
                log.debug("%s: no local answer, asking VizieR", name)
        spec = vizier.SPECS.get(name)
        if spec is None:
            raise CatalogError(
                f"unknown catalogue {name!r}", hint=f"use one of {sorted(vizier.SPECS)} or tycho2"
            )
        payload = vizier.build_query(spec, ra, dec, radius_deg, mag_limit)
        cached = self.cache.get(payload)
        if cached is not None:
            return cached
        if self.config.offline:
            raise CatalogError(
                f"offline and {name} has no cached answer for this field",
                hint="run once with catalog.offline = false",
            )
        table = self._fetch_with_retries(spec, payload)
        self.cache.put(payload, table)
        return table

    def _fetch_with_retries(self, spec: vizier.VizierSpec, payload: Mapping[str, Any]) -> Table:
        return call_with_retries(
            lambda: self.fetcher(spec, payload),
            label=spec.name,
            retries=self.config.retries,
            throttle=self._throttle,
            sleep=self._sleep,
        )
