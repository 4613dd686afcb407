"""transit fits

Revision ID: timeseries_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "timeseries_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transit_fits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("time_scale", sa.String(length=16), nullable=False),
        sa.Column("n_frames", sa.Integer(), nullable=True),
        sa.Column("n_points", sa.Integer(), nullable=True),
        sa.Column("aperture_px", sa.Float(), nullable=True),
        sa.Column("tc", sa.Float(), nullable=True),
        sa.Column("tc_err", sa.Float(), nullable=True),
        sa.Column("rp_rs", sa.Float(), nullable=True),
        sa.Column("rp_rs_err", sa.Float(), nullable=True),
        sa.Column("a_rs", sa.Float(), nullable=True),
        sa.Column("inclination", sa.Float(), nullable=True),
        sa.Column("depth", sa.Float(), nullable=True),
        sa.Column("o_minus_c_min", sa.Float(), nullable=True),
        sa.Column("o_minus_c_err_min", sa.Float(), nullable=True),
        sa.Column("rms", sa.Float(), nullable=True),
        sa.Column("binned_rms", sa.Float(), nullable=True),
        sa.Column("binned_expected", sa.Float(), nullable=True),
        sa.Column("bin_minutes", sa.Float(), nullable=True),
        sa.Column("detrend", sa.JSON(), nullable=True),
        sa.Column("comparisons", sa.JSON(), nullable=True),
        sa.Column("csv_path", sa.String(length=1024), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transit_fits")),
        sa.UniqueConstraint("night", "target", name="uq_transit_fits_night_target"),
    )
    with op.batch_alter_table("transit_fits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transit_fits_night"), ["night"], unique=False)
        batch_op.create_index(batch_op.f("ix_transit_fits_target"), ["target"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transit_fits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transit_fits_target"))
        batch_op.drop_index(batch_op.f("ix_transit_fits_night"))
    op.drop_table("transit_fits")
