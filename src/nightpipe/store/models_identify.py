"""Table of the identify step: what the services know in each night's field, and where it was seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class FieldObject(TimestampMixin, Base):
    """One known object of a night's field (re-identifying the night replaces its rows).

    ``role`` is ``variable`` (a star of the night that is a known variable), ``object`` (an
    object of interest a service lists in the field) or ``body`` (a solar-system body on one
    frame: ``frame_id`` set, ``source_index`` the source it was seen as, -1 when not seen).
    """

    __tablename__ = "field_objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[str] = mapped_column(String(10), index=True)
    scope_frame_id: Mapped[int | None] = mapped_column(Integer)  # set when one frame was identified
    role: Mapped[str] = mapped_column(String(16))
    service: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    ra: Mapped[float] = mapped_column(Float)
    dec: Mapped[float] = mapped_column(Float)
    frame_id: Mapped[int | None] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    source_index: Mapped[int | None] = mapped_column(Integer)
    separation_arcsec: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
