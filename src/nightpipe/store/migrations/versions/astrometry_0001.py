"""plate solutions

Revision ID: astrometry_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "astrometry_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plate_solutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=False),
        sa.Column("night", sa.String(length=10), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("n_stars", sa.Integer(), nullable=True),
        sa.Column("n_matched", sa.Integer(), nullable=True),
        sa.Column("n_reference", sa.Integer(), nullable=True),
        sa.Column("rms_arcsec", sa.Float(), nullable=True),
        sa.Column("rms_px", sa.Float(), nullable=True),
        sa.Column("pixel_scale", sa.Float(), nullable=True),
        sa.Column("rotation", sa.Float(), nullable=True),
        sa.Column("flipped", sa.Boolean(), nullable=True),
        sa.Column("ra_center", sa.Float(), nullable=True),
        sa.Column("dec_center", sa.Float(), nullable=True),
        sa.Column("sip_order", sa.Integer(), nullable=True),
        sa.Column("fwhm_px", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name=op.f("fk_plate_solutions_frame_id_frames"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plate_solutions")),
        sa.UniqueConstraint("frame_id", name="uq_plate_solutions_frame_id"),
    )
    with op.batch_alter_table("plate_solutions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plate_solutions_frame_id"), ["frame_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plate_solutions_night"), ["night"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plate_solutions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plate_solutions_night"))
        batch_op.drop_index(batch_op.f("ix_plate_solutions_frame_id"))
    op.drop_table("plate_solutions")
