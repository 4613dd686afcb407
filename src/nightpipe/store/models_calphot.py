"""Tables of the photometric calibration: one zero point per frame, calibrated magnitudes per source."""

from __future__ import annotations

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class ZeroPoint(TimestampMixin, Base):
    """The zero point of one frame against a reference catalogue, with its provenance."""

    __tablename__ = "zero_points"
    __table_args__ = (UniqueConstraint("frame_id", name="uq_zero_points_frame_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    night: Mapped[str | None] = mapped_column(String(10), index=True)
    catalog: Mapped[str] = mapped_column(String(32))
    band: Mapped[str] = mapped_column(String(16))
    band_source: Mapped[str] = mapped_column(String(64))
    aperture_px: Mapped[float] = mapped_column(Float)
    zero_point: Mapped[float] = mapped_column(Float)
    zero_point_err: Mapped[float] = mapped_column(Float)
    colour_term: Mapped[float | None] = mapped_column(Float)
    extra_scatter: Mapped[float] = mapped_column(Float)
    rms: Mapped[float] = mapped_column(Float)
    n_used: Mapped[int] = mapped_column(Integer)
    n_rejected: Mapped[int] = mapped_column(Integer)
    airmass: Mapped[float | None] = mapped_column(Float)
    settings: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class CalibratedMag(Base):
    """A calibrated magnitude of one source in one frame."""

    __tablename__ = "calibrated_mags"
    __table_args__ = (UniqueConstraint("frame_id", "source_id", name="uq_calibrated_mags_frame_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # no index of its own: the unique constraint's index leads with frame_id (calphot_0002)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    source_id: Mapped[int] = mapped_column(Integer)
    ra: Mapped[float | None] = mapped_column(Float, index=True)
    dec: Mapped[float | None] = mapped_column(Float)
    mag: Mapped[float] = mapped_column(Float)
    mag_err: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(16))
    catalog_id: Mapped[str | None] = mapped_column(String(64))
    catalog_mag: Mapped[float | None] = mapped_column(Float)
