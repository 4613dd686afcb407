"""Gaia DR3 from the identify step's cached answers, as a reference catalogue for zero points.

A night identified once online (or prepared with ``nightpipe catalog fetch``) has a Gaia
answer covering its field; the zero points then use its G, BP and RP, and fit a colour term
with BP-RP, offline, without a second query.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from nightpipe.catalogs.answers import AnswerCache
from nightpipe.catalogs.schema import standard_table
from nightpipe.catalogs.service import LocalCone
from nightpipe.config import Settings
from nightpipe.errors import CatalogError
from nightpipe.identify.match import separation_arcsec
from nightpipe.identify.service import FieldQuery
from nightpipe.identify.vizier_services import GaiaService


def gaia_reference(answers: AnswerCache, service: GaiaService, query: FieldQuery) -> Table:
    """The Gaia stars of a cached answer covering ``query``, as a standard reference table."""
    stored = answers.covering(service.name, service.payload(query))
    if stored is None:
        raise CatalogError("no cached Gaia answer of the identify step covers this field")
    gaia = service.parse(stored.raw)
    ra, dec = np.asarray(gaia["ra"], float), np.asarray(gaia["dec"], float)
    gaia = gaia[separation_arcsec(ra, dec, query.ra, query.dec) <= query.radius_deg * 3600.0]
    return standard_table(
        ids=np.asarray(gaia["source_id"]).astype(str),
        ra=np.asarray(gaia["ra"], float),
        dec=np.asarray(gaia["dec"], float),
        mags={band: np.asarray(gaia[band], float) for band in ("G", "BP", "RP")},
        errors={band: np.asarray(gaia[f"e_{band}"], float) for band in ("G", "BP", "RP")},
        pmra=np.asarray(gaia["pmra"], float),
        pmdec=np.asarray(gaia["pmdec"], float),
        catalog="gaia",
        epoch=float(gaia.meta["epoch"]),
    )


def identify_gaia_cone(settings: Settings) -> LocalCone:
    """A cone search over the identify step's cached Gaia answers (``catalog.order`` 'gaia')."""
    answers = AnswerCache(settings.paths.cache)
    service = GaiaService(max_mag=settings.identify.gaia_max_mag)

    def cone(ra: float, dec: float, radius_deg: float, mag_limit: float | None) -> Table:
        table = gaia_reference(answers, service, FieldQuery(ra, dec, radius_deg))
        return table[table["G"] <= mag_limit] if mag_limit is not None else table

    return cone
