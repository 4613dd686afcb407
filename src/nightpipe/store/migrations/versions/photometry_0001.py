"""source photometry: per-frame summaries and per-source measurements

Revision ID: photometry_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "photometry_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photometry_frames",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "frame_id",
            sa.Integer(),
            sa.ForeignKey("frames.id", ondelete="CASCADE", name="fk_photometry_frames_frame_id_frames"),
            nullable=False,
        ),
        sa.Column("night", sa.String(10), nullable=True),
        sa.Column("table_path", sa.String(1024), nullable=False),
        sa.Column("n_sources", sa.Integer(), nullable=False),
        sa.Column("fwhm_px", sa.Float(), nullable=True),
        sa.Column("fwhm_arcsec", sa.Float(), nullable=True),
        sa.Column("ellipticity", sa.Float(), nullable=True),
        sa.Column("sky", sa.Float(), nullable=True),
        sa.Column("sky_rms", sa.Float(), nullable=True),
        sa.Column("aper_radii_px", sa.JSON(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("software", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("frame_id", name="uq_photometry_frames_frame_id"),
    )
    op.create_index("ix_photometry_frames_frame_id", "photometry_frames", ["frame_id"])
    op.create_index("ix_photometry_frames_night", "photometry_frames", ["night"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "frame_id",
            sa.Integer(),
            sa.ForeignKey("frames.id", ondelete="CASCADE", name="fk_measurements_frame_id_frames"),
            nullable=False,
        ),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("ra", sa.Float(), nullable=True),
        sa.Column("dec", sa.Float(), nullable=True),
        sa.Column("fwhm", sa.Float(), nullable=True),
        sa.Column("peak", sa.Float(), nullable=True),
        sa.Column("bkg", sa.Float(), nullable=True),
        sa.Column("flux", sa.JSON(), nullable=False),
        sa.Column("flux_err", sa.JSON(), nullable=False),
        sa.Column("psf_flux", sa.Float(), nullable=True),
        sa.Column("psf_flux_err", sa.Float(), nullable=True),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.UniqueConstraint("frame_id", "source_index", name="uq_measurements_frame_source"),
    )
    op.create_index("ix_measurements_frame_id", "measurements", ["frame_id"])
    op.create_index("ix_measurements_ra", "measurements", ["ra"])


def downgrade() -> None:
    op.drop_index("ix_measurements_ra", table_name="measurements")
    op.drop_index("ix_measurements_frame_id", table_name="measurements")
    op.drop_table("measurements")
    op.drop_index("ix_photometry_frames_night", table_name="photometry_frames")
    op.drop_index("ix_photometry_frames_frame_id", table_name="photometry_frames")
    op.drop_table("photometry_frames")
