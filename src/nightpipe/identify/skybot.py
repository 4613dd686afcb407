"""SkyBoT (IMCCE): the asteroids, comets and planets predicted in the field at an epoch.

One cone per epoch through ``astroquery.imcce``. Its answer carries each body's predicted
position, visual magnitude, position uncertainty and apparent motion (arcsec/h), so a frame
between two asked epochs is served by moving the nearest epoch's positions along the rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.errors import CatalogError
from nightpipe.identify.service import FieldQuery, column, floats, identification_table, read_table, strings

MAX_RADIUS_DEG = 10.0


@dataclass(frozen=True)
class SkybotService:
    """SkyBoT cone search at one epoch, from one observatory (MPC code)."""

    name: str = "skybot"
    version: str = "IMCCE SkyBoT cone search"
    per_epoch: bool = True
    location: str = "500"

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        if query.epoch_jd is None:
            raise CatalogError("SkyBoT needs the epoch of the frame", hint="the frame has no mid-time")
        return {"service": self.name, "location": self.location, **query.rounded(with_epoch=True)}

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        import astropy.units as u
        from astropy.coordinates import SkyCoord
        from astropy.time import Time
        from astroquery.imcce import Skybot

        centre = SkyCoord(payload["ra"] * u.deg, payload["dec"] * u.deg)
        radius = min(float(payload["radius_deg"]), MAX_RADIUS_DEG) * u.deg
        try:
            Skybot.TIMEOUT = timeout_s
            response = Skybot.cone_search_async(
                centre,
                radius,
                Time(payload["epoch_jd"], format="jd", scale="utc"),
                location=str(payload["location"]),
                get_raw_response=True,
                cache=False,
            )
        except Exception as exc:  # network, HTTP and timeout failures of astroquery/requests
            raise CatalogError(f"SkyBoT query failed: {exc.__class__.__name__}: {exc}") from exc
        return bytes(response.content)

    def parse(self, raw: bytes) -> Table:
        if b"No solar system object was found" in raw[:4000]:
            return _empty(self.name)
        answer = read_table(raw, self.name, use_ids=True)
        n = len(answer)
        if n == 0:
            return _empty(self.name)
        ra = column(answer, ("_raj2000", "RA_deg"))
        dec = column(answer, ("_decj2000", "DEC_deg"))
        if ra is None or dec is None:
            raise CatalogError(f"SkyBoT answer has no positions (columns: {answer.colnames[:12]})")
        number = strings(column(answer, ("num", "Num")), n)
        return identification_table(
            name=strings(column(answer, ("name", "Name")), n),
            kind=strings(column(answer, ("class", "Class")), n),
            ra=floats(ra, n),
            dec=floats(dec, n),
            pos_err=floats(column(answer, ("errpos", "Err")), n),
            epoch=2000.0,
            service=self.name,
            extra={
                "number": number,
                "V": floats(column(answer, ("magV", "Mv")), n),
                "dra_arcsec_h": floats(column(answer, ("dracosdec", "dRA")), n),
                "ddec_arcsec_h": floats(column(answer, ("ddec", "dDEC")), n),
            },
        )


def _empty(service: str) -> Table:
    empty = np.array([], dtype=float)
    return identification_table(
        name=np.array([], dtype=str),
        kind=np.array([], dtype=str),
        ra=empty,
        dec=empty,
        epoch=2000.0,
        service=service,
        extra={"number": np.array([], dtype=str), "V": empty, "dra_arcsec_h": empty, "ddec_arcsec_h": empty},
    )


def move_to(table: Table, answer_jd: float, jd: float) -> tuple[np.ndarray, np.ndarray]:
    """Predicted positions at ``jd`` from an answer at ``answer_jd`` and its apparent rates."""
    hours = (jd - answer_jd) * 24.0
    dra = np.nan_to_num(np.asarray(table["dra_arcsec_h"], float)) * hours / 3600.0
    ddec = np.nan_to_num(np.asarray(table["ddec_arcsec_h"], float)) * hours / 3600.0
    dec = np.asarray(table["dec"], float) + ddec
    cosd = np.cos(np.radians(np.asarray(table["dec"], float)))
    ra = np.mod(np.asarray(table["ra"], float) + dra / np.where(cosd == 0, 1.0, cosd), 360.0)
    return ra, dec
