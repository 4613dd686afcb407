"""Tables of source photometry: one summary row per frame, one measurement row per source."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class PhotometryFrame(TimestampMixin, Base):
    """The photometry of one frame: seeing, sky, how many sources, where the table is."""

    __tablename__ = "photometry_frames"
    __table_args__ = (UniqueConstraint("frame_id", name="uq_photometry_frames_frame_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    night: Mapped[str | None] = mapped_column(String(10), index=True)
    table_path: Mapped[str] = mapped_column(String(1024))
    n_sources: Mapped[int] = mapped_column(Integer)
    fwhm_px: Mapped[float | None] = mapped_column(Float)
    fwhm_arcsec: Mapped[float | None] = mapped_column(Float)
    ellipticity: Mapped[float | None] = mapped_column(Float)
    sky: Mapped[float | None] = mapped_column(Float)
    sky_rms: Mapped[float | None] = mapped_column(Float)
    aper_radii_px: Mapped[list[float]] = mapped_column(JSON)
    unit: Mapped[str] = mapped_column(String(16), default="adu")
    settings_hash: Mapped[str] = mapped_column(String(64))
    software: Mapped[str] = mapped_column(String(64))


class Measurement(Base):
    """One source measured on one frame; fluxes per aperture radius of its frame."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("frame_id", "source_index", name="uq_measurements_frame_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # no index of its own: the unique constraint's index leads with frame_id (photometry_0002)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    source_index: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    ra: Mapped[float | None] = mapped_column(Float, index=True)
    dec: Mapped[float | None] = mapped_column(Float)
    fwhm: Mapped[float | None] = mapped_column(Float)
    peak: Mapped[float | None] = mapped_column(Float)
    bkg: Mapped[float | None] = mapped_column(Float)
    flux: Mapped[list[Any]] = mapped_column(JSON)
    flux_err: Mapped[list[Any]] = mapped_column(JSON)
    psf_flux: Mapped[float | None] = mapped_column(Float)
    psf_flux_err: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[int] = mapped_column(Integer, default=0)
