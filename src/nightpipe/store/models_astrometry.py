"""Table of the astrometry step: one plate solution (or failure) per frame."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class PlateSolution(TimestampMixin, Base):
    """The WCS found for one frame, how it was found and how well it fits the reference stars.

    ``method`` is ``header`` (the header's own WCS passed the checks), ``reference-match``
    (matched to the night's reference frame, refined on index stars), ``solve-field`` (a
    full astrometry.net solve) or ``catalog-match`` (a field too small for the index files, its
    stars matched by triangles to the catalogue stars around the header's position and scale).
    Residuals (RMS on the sky and in pixels) are against the index
    (Tycho-2, epoch J2000, no proper motion) stars matched to detections, leaving out saturated
    stars when at least 15 others match, after 3-sigma clipping; ``n_matched`` counts those kept.
    """

    __tablename__ = "plate_solutions"
    __table_args__ = (UniqueConstraint("frame_id", name="uq_plate_solutions_frame_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    night: Mapped[str | None] = mapped_column(String(10), index=True)
    path: Mapped[str | None] = mapped_column(String(1024))
    solved: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str | None] = mapped_column(String(32))
    n_stars: Mapped[int | None] = mapped_column(Integer)
    n_matched: Mapped[int | None] = mapped_column(Integer)
    n_reference: Mapped[int | None] = mapped_column(Integer)
    rms_arcsec: Mapped[float | None] = mapped_column(Float)
    rms_px: Mapped[float | None] = mapped_column(Float)
    pixel_scale: Mapped[float | None] = mapped_column(Float)
    rotation: Mapped[float | None] = mapped_column(Float)
    flipped: Mapped[bool | None] = mapped_column(Boolean)
    ra_center: Mapped[float | None] = mapped_column(Float)
    dec_center: Mapped[float | None] = mapped_column(Float)
    sip_order: Mapped[int | None] = mapped_column(Integer)
    fwhm_px: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
