"""zero points and calibrated magnitudes

Revision ID: calphot_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "calphot_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zero_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "frame_id",
            sa.Integer(),
            sa.ForeignKey("frames.id", ondelete="CASCADE", name="fk_zero_points_frame_id_frames"),
            nullable=False,
        ),
        sa.Column("night", sa.String(10), nullable=True),
        sa.Column("catalog", sa.String(32), nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("band_source", sa.String(64), nullable=False),
        sa.Column("aperture_px", sa.Float(), nullable=False),
        sa.Column("zero_point", sa.Float(), nullable=False),
        sa.Column("zero_point_err", sa.Float(), nullable=False),
        sa.Column("colour_term", sa.Float(), nullable=True),
        sa.Column("extra_scatter", sa.Float(), nullable=False),
        sa.Column("rms", sa.Float(), nullable=False),
        sa.Column("n_used", sa.Integer(), nullable=False),
        sa.Column("n_rejected", sa.Integer(), nullable=False),
        sa.Column("airmass", sa.Float(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("frame_id", name="uq_zero_points_frame_id"),
    )
    op.create_index("ix_zero_points_frame_id", "zero_points", ["frame_id"])
    op.create_index("ix_zero_points_night", "zero_points", ["night"])
    op.create_table(
        "calibrated_mags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "frame_id",
            sa.Integer(),
            sa.ForeignKey("frames.id", ondelete="CASCADE", name="fk_calibrated_mags_frame_id_frames"),
            nullable=False,
        ),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("ra", sa.Float(), nullable=True),
        sa.Column("dec", sa.Float(), nullable=True),
        sa.Column("mag", sa.Float(), nullable=False),
        sa.Column("mag_err", sa.Float(), nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("catalog_id", sa.String(64), nullable=True),
        sa.Column("catalog_mag", sa.Float(), nullable=True),
        sa.UniqueConstraint("frame_id", "source_id", name="uq_calibrated_mags_frame_source"),
    )
    op.create_index("ix_calibrated_mags_frame_id", "calibrated_mags", ["frame_id"])
    op.create_index("ix_calibrated_mags_ra", "calibrated_mags", ["ra"])


def downgrade() -> None:
    op.drop_table("calibrated_mags")
    op.drop_table("zero_points")
