"""An on-disk cache of catalogue answers, keyed by the query, so that reruns work offline."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from astropy.table import Table

from nightpipe.frames.fitsio import atomic_path

log = logging.getLogger(__name__)


def query_key(payload: dict[str, Any]) -> str:
    """A stable hash of a query payload (catalogue, centre, radius, limits)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class CatalogCache:
    """ECSV files under ``root``, one per query, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def path_for(self, payload: dict[str, Any]) -> Path:
        """Where the answer to ``payload`` is (or would be) stored."""
        name = str(payload.get("catalog", "catalog")).replace("/", "_")
        return self.root / "catalogs" / f"{name}-{query_key(payload)}.ecsv"

    def get(self, payload: dict[str, Any]) -> Table | None:
        """The cached answer, or ``None``."""
        path = self.path_for(payload)
        if not path.is_file():
            return None
        log.debug("catalogue cache hit %s", path.name)
        return Table.read(path, format="ascii.ecsv")

    def put(self, payload: dict[str, Any], table: Table) -> Path:
        """Store an answer; returns its file."""
        path = self.path_for(payload)
        table = table.copy()
        table.meta["query"] = payload
        with atomic_path(path, suffix=".ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        return path
