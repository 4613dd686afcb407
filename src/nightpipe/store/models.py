"""Core tables: frames (the inventory), masters (the calibration library), step runs.

Each later domain (astrometry, photometry, time series...) keeps its tables in a module
``store/models_<domain>.py`` and its own alembic migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin, utcnow


class Frame(Base):
    """One image (one HDU) found by a scan; ``status`` is ok, bad (unreadable) or missing."""

    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("path", "hdu", name="uq_frames_path_hdu"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), index=True)
    hdu: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime: Mapped[float] = mapped_column(Float)
    sha1: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok", index=True)
    error: Mapped[str | None] = mapped_column(Text)

    kind: Mapped[str] = mapped_column(String(16), default="unknown", index=True)
    kind_inferred: Mapped[bool] = mapped_column(Boolean, default=False)
    kind_source: Mapped[str | None] = mapped_column(String(64))
    filter: Mapped[str | None] = mapped_column(String(64))
    exptime: Mapped[float | None] = mapped_column(Float)
    xbin: Mapped[int | None] = mapped_column(Integer)
    ybin: Mapped[int | None] = mapped_column(Integer)
    gain: Mapped[float | None] = mapped_column(Float)  # e-/ADU as the header states them, by dialect
    offset: Mapped[float | None] = mapped_column(Float)
    readout_mode: Mapped[str | None] = mapped_column(String(64))
    # the CMOS gain setting (GAIN of N.I.N.A., SharpCap...), a matching key (migration inventory_0002)
    gain_setting: Mapped[float | None] = mapped_column(Float)
    ccd_temp: Mapped[float | None] = mapped_column(Float)
    set_temp: Mapped[float | None] = mapped_column(Float)
    naxis1: Mapped[int | None] = mapped_column(Integer)
    naxis2: Mapped[int | None] = mapped_column(Integer)
    object: Mapped[str | None] = mapped_column(String(128))
    ra: Mapped[float | None] = mapped_column(Float)
    dec: Mapped[float | None] = mapped_column(Float)
    observer: Mapped[str | None] = mapped_column(String(128))
    site: Mapped[str | None] = mapped_column(String(128))
    telescope: Mapped[str | None] = mapped_column(String(128))
    instrument: Mapped[str | None] = mapped_column(String(128))

    date_obs: Mapped[str | None] = mapped_column(String(64))
    mid_utc: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    jd_utc: Mapped[float | None] = mapped_column(Float)
    bjd_tdb: Mapped[float | None] = mapped_column(Float)
    time_source: Mapped[str | None] = mapped_column(String(256))
    night: Mapped[str | None] = mapped_column(String(10), index=True)
    header: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # digest of the settings that shape the normalisation (migration inventory_0001)
    settings_hash: Mapped[str | None] = mapped_column(String(16))


class Master(TimestampMixin, Base):
    """A master calibration frame in the library, with its provenance and quality figures."""

    __tablename__ = "masters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    xbin: Mapped[int | None] = mapped_column(Integer)
    ybin: Mapped[int | None] = mapped_column(Integer)
    naxis1: Mapped[int | None] = mapped_column(Integer)
    naxis2: Mapped[int | None] = mapped_column(Integer)
    gain: Mapped[float | None] = mapped_column(Float)
    offset: Mapped[float | None] = mapped_column(Float)
    readout_mode: Mapped[str | None] = mapped_column(String(64))
    gain_setting: Mapped[float | None] = mapped_column(Float)  # migration inventory_0002
    filter: Mapped[str | None] = mapped_column(String(64))
    exptime: Mapped[float | None] = mapped_column(Float)
    ccd_temp: Mapped[float | None] = mapped_column(Float)
    bias_included: Mapped[bool] = mapped_column(Boolean, default=False)
    obs_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    nframes: Mapped[int] = mapped_column(Integer)
    inputs_hash: Mapped[str] = mapped_column(String(64), index=True)
    settings_hash: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[list[str]] = mapped_column(JSON)
    software: Mapped[str] = mapped_column(String(64))
    quality: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)


class StepRun(Base):
    """The outcome of one pipeline step on one frame (or on the night when frame_id is null)."""

    __tablename__ = "step_runs"
    __table_args__ = (UniqueConstraint("frame_id", "step", name="uq_step_runs_frame_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int | None] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    night: Mapped[str | None] = mapped_column(String(10), index=True)
    step: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    input_hash: Mapped[str | None] = mapped_column(String(64))
    output_path: Mapped[str | None] = mapped_column(String(1024))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
