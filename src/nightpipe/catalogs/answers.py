"""Raw answers of remote services on disk, so that a night can be identified again offline.

Each answer is stored as the service sent it (VOTable, FITS or JSON bytes) in one file per
service and query under ``<cache>/answers/<service>/``, beside a small JSON file holding the
query, the service's version string and the time it was fetched. Parsing always starts from
these bytes, online or not, so a cached night goes through exactly the code of a live one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nightpipe.frames.fitsio import atomic_path

log = logging.getLogger(__name__)


def answer_key(payload: dict[str, Any]) -> str:
    """A stable hash of a query (service, centre, radius, epoch...)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StoredAnswer:
    """One cached answer: its bytes and where and when it came from."""

    raw: bytes
    query: dict[str, Any]
    service_version: str
    fetched_utc: str
    path: Path

    def age_days(self, now: datetime | None = None) -> float:
        """Days since the answer was fetched."""
        fetched = datetime.fromisoformat(self.fetched_utc)
        return ((now or datetime.now(UTC)) - fetched).total_seconds() / 86400.0


class AnswerCache:
    """Files under ``root/answers/<service>/``, written atomically (data first, then its record)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser() / "answers"

    def _paths(self, service: str, payload: dict[str, Any]) -> tuple[Path, Path]:
        base = self.root / service / answer_key(payload)
        return base.with_suffix(".raw"), base.with_suffix(".json")

    def get(self, service: str, payload: dict[str, Any]) -> StoredAnswer | None:
        """The stored answer to ``payload``, or ``None`` (also when its record is unreadable)."""
        data, record = self._paths(service, payload)
        if not (data.is_file() and record.is_file()):
            return None
        try:
            meta = json.loads(record.read_text())
            return StoredAnswer(
                raw=data.read_bytes(),
                query=dict(meta["query"]),
                service_version=str(meta.get("service_version", "")),
                fetched_utc=str(meta["fetched_utc"]),
                path=data,
            )
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable cached answer %s: %s", record, exc)
            return None

    def put(
        self,
        service: str,
        payload: dict[str, Any],
        raw: bytes,
        *,
        service_version: str,
        fetched: datetime | None = None,
    ) -> StoredAnswer:
        """Store an answer; the record is written last, so a half-stored answer is never read."""
        data, record = self._paths(service, payload)
        fetched_utc = (fetched or datetime.now(UTC)).isoformat()
        with atomic_path(data, suffix=".raw") as tmp:
            tmp.write_bytes(raw)
        meta = {"query": payload, "service_version": service_version, "fetched_utc": fetched_utc}
        with atomic_path(record, suffix=".json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        return StoredAnswer(raw, dict(payload), service_version, fetched_utc, data)

    def covering(self, service: str, payload: dict[str, Any]) -> StoredAnswer | None:
        """A stored answer whose cone contains the cone of ``payload`` (all other keys equal).

        A field fetched ahead of a night (``nightpipe catalog fetch --ra --dec --radius``)
        serves every night whose field lies inside it; the freshest such answer is returned.
        """
        best: StoredAnswer | None = None
        for record in sorted((self.root / service).glob("*.json")) if (self.root / service).is_dir() else []:
            try:
                query = json.loads(record.read_text())["query"]
            except (OSError, ValueError, KeyError):
                continue
            if not _contains(query, payload):
                continue
            found = self.get(service, query)
            if found is not None and (best is None or found.fetched_utc > best.fetched_utc):
                best = found
        return best

    def entries(self) -> list[Path]:
        """Every stored record (for ``doctor`` and tests)."""
        return sorted(self.root.glob("*/*.json")) if self.root.is_dir() else []


GEOMETRY = ("ra", "dec", "radius_deg")


def _contains(outer: dict[str, Any], inner: dict[str, Any]) -> bool:
    """Whether the cone of ``outer`` contains that of ``inner`` and every other key is equal."""
    import math

    rest = {k: v for k, v in outer.items() if k not in GEOMETRY}
    if rest != {k: v for k, v in inner.items() if k not in GEOMETRY}:
        return False
    try:
        ra1, dec1, r1 = (math.radians(float(outer[k])) for k in GEOMETRY)
        ra2, dec2, r2 = (math.radians(float(inner[k])) for k in GEOMETRY)
    except (KeyError, TypeError, ValueError):
        return False
    cos_sep = math.sin(dec1) * math.sin(dec2) + math.cos(dec1) * math.cos(dec2) * math.cos(ra1 - ra2)
    return math.acos(max(-1.0, min(1.0, cos_sep))) + r2 <= r1 + 1e-9
