"""The identify step's findings as database rows (``field_objects``), replaced on each identification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from nightpipe.store.models_identify import FieldObject
from nightpipe.store.values import finite_or_none

if TYPE_CHECKING:
    from nightpipe.identify.step import Identified


def store_identified(session: Session, night: str, frame_id: int | None, found: Identified) -> int:
    """Replace the night's (or the frame's) rows; returns how many were written."""
    column = FieldObject.scope_frame_id
    scope = column.is_(None) if frame_id is None else column == frame_id
    session.execute(delete(FieldObject).where(FieldObject.night == night, scope))
    rows: list[dict[str, Any]] = []
    for row in found.variables:
        service = "vsx" if str(row["label"]).startswith("VSX") else "simbad"
        name = str(row["vsx_name"] if service == "vsx" else row["simbad_id"])
        kind = str(row["vsx_type"] if service == "vsx" else row["simbad_type"])
        details = {k: _plain(row[k]) for k in ("vsx_period", "vsx_range", "label") if k in row.colnames}
        rows.append(_row(night, frame_id, "variable", service, name, kind, row["ra"], row["dec"],
                         separation=row[f"{service}_sep"], details=details))  # fmt: skip
    for row in found.objects:
        rows.append(_row(night, frame_id, "object", str(row["service"]), str(row["name"]), str(row["kind"]),
                         row["ra"], row["dec"]))  # fmt: skip
    for row in found.solar_system:
        details = {"number": str(row["number"]), "V": _plain(row["V"]), "jd_utc": float(row["jd_utc"])}
        rows.append(_row(night, frame_id, "body", "skybot", str(row["name"]), str(row["kind"]), row["ra"],
                         row["dec"], frame=int(row["frame_id"]), source=int(row["source_index"]),
                         separation=row["offset_arcsec"], details=details))  # fmt: skip
    if rows:
        session.execute(insert(FieldObject), rows)
    return len(rows)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return finite_or_none(value) if isinstance(value, float) else value


def _row(night: str, scope: int | None, role: str, service: str, name: str, kind: str, ra: Any, dec: Any, *,
         frame: int | None = None, source: int | None = None, separation: Any = None,
         details: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    from nightpipe.store.base import utcnow

    sep = float(separation) if separation is not None and np.isfinite(float(separation)) else None
    return {"night": night, "scope_frame_id": scope, "role": role, "service": service, "name": name[:128],
            "kind": kind[:64], "ra": float(ra), "dec": float(dec), "frame_id": frame, "source_index": source,
            "separation_arcsec": sep, "details": details, "created_at": utcnow()}  # fmt: skip
