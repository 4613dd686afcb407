"""Astro-Colibri: transients and multi-messenger events (GRB, FRB, neutrinos, SNe) near the field.

Its cone search (HTTP POST of JSON, with the user's uid) answers the events within a radius
and a time window; the window here is the night's epoch minus ``window_days`` to the epoch.
The uid is sent with the request but never written into the cache or the logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Table

from nightpipe.errors import CatalogError
from nightpipe.identify.service import FieldQuery, identification_table

CONE_SEARCH = "https://astro-colibri.science/cone_search"


@dataclass(frozen=True)
class ColibriService:
    """Astro-Colibri's cone search (needs an account's uid)."""

    name: str = "colibri"
    version: str = "Astro-Colibri cone_search API"
    per_epoch: bool = False
    key: str | None = None
    window_days: float = 30.0

    def payload(self, query: FieldQuery) -> dict[str, Any]:
        if query.epoch_jd is None:
            raise CatalogError("Astro-Colibri needs the night's epoch")
        return {"service": self.name, "window_days": self.window_days, **query.rounded(with_epoch=True)}

    def request_body(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The documented JSON body of a cone search."""
        from astropy.time import Time

        end = Time(float(payload["epoch_jd"]), format="jd", scale="utc")
        start = Time(float(payload["epoch_jd"]) - float(payload["window_days"]), format="jd", scale="utc")
        return {
            "uid": self.key,
            "filter": None,
            "time_range": {"min": start.isot, "max": end.isot},
            "properties": {
                "type": "cone",
                "position": {"ra": float(payload["ra"]), "dec": float(payload["dec"])},
                "radius": float(payload["radius_deg"]),
            },
        }

    def fetch(self, payload: Mapping[str, Any], timeout_s: float) -> bytes:
        import requests

        if not self.key:
            raise CatalogError(
                "Astro-Colibri needs a user id", hint="set identify.colibri_key (astro-colibri.com/account)"
            )
        try:
            response = requests.post(CONE_SEARCH, json=self.request_body(payload), timeout=timeout_s)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise CatalogError(f"Astro-Colibri query failed: {exc.__class__.__name__}") from exc
        return bytes(response.content)

    def parse(self, raw: bytes) -> Table:
        try:
            answer = json.loads(raw)
            events = [*answer.get("voevents", []), *answer.get("sources", [])]
            rows = [(_text(e, "source_name", "name", "trigger_id"), _text(e, "type", "classification"),
                     float(e["ra"]), float(e["dec"]), float(e.get("err") or 0.0) * 3600.0,
                     _text(e, "trigger_id", "source_name"), _text(e, "time", "discovery_time"))
                    for e in events if e.get("ra") is not None and e.get("dec") is not None]  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CatalogError(f"Astro-Colibri answer is malformed: {exc.__class__.__name__}: {exc}") from exc
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
        return identification_table(
            name=np.array(columns[0], dtype=str),
            kind=np.array(columns[1], dtype=str),
            ra=np.array(columns[2], dtype=float),
            dec=np.array(columns[3], dtype=float),
            pos_err=np.array(columns[4], dtype=float),
            epoch=2000.0,
            service=self.name,
            extra={"event_id": np.array(columns[5], dtype=str), "time": np.array(columns[6], dtype=str)},
        )


def _text(event: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = event.get(key)
        if value not in (None, ""):
            return str(value)
    return ""
