"""Table of the light-curve step: one transit fit per night and target."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightpipe.store.base import Base, TimestampMixin


class TransitFitRow(TimestampMixin, Base):
    """The light curve and transit fit of one target on one night (re-running replaces it).

    Times are in ``time_scale`` (BJD_TDB for nights); errors are the 68 % half-widths averaged;
    ``rms`` is the residual scatter per point, ``binned_rms`` and ``binned_expected`` the scatter
    of ``bin_minutes`` bins and its white-noise expectation. ``details`` holds the fit JSON.
    """

    __tablename__ = "transit_fits"
    __table_args__ = (UniqueConstraint("night", "target", name="uq_transit_fits_night_target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night: Mapped[str] = mapped_column(String(10), index=True)
    target: Mapped[str] = mapped_column(String(128), index=True)
    time_scale: Mapped[str] = mapped_column(String(16), default="BJD_TDB")
    n_frames: Mapped[int | None] = mapped_column(Integer)
    n_points: Mapped[int | None] = mapped_column(Integer)
    aperture_px: Mapped[float | None] = mapped_column(Float)
    tc: Mapped[float | None] = mapped_column(Float)
    tc_err: Mapped[float | None] = mapped_column(Float)
    rp_rs: Mapped[float | None] = mapped_column(Float)
    rp_rs_err: Mapped[float | None] = mapped_column(Float)
    a_rs: Mapped[float | None] = mapped_column(Float)
    inclination: Mapped[float | None] = mapped_column(Float)
    depth: Mapped[float | None] = mapped_column(Float)
    o_minus_c_min: Mapped[float | None] = mapped_column(Float)
    o_minus_c_err_min: Mapped[float | None] = mapped_column(Float)
    rms: Mapped[float | None] = mapped_column(Float)
    binned_rms: Mapped[float | None] = mapped_column(Float)
    binned_expected: Mapped[float | None] = mapped_column(Float)
    bin_minutes: Mapped[float | None] = mapped_column(Float)
    detrend: Mapped[list[str] | None] = mapped_column(JSON)
    comparisons: Mapped[list[int] | None] = mapped_column(JSON)
    csv_path: Mapped[str | None] = mapped_column(String(1024))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
