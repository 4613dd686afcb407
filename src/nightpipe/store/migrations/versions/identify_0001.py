"""field objects of the identify step

Revision ID: identify_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "identify_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night", sa.String(length=10), nullable=False),
        sa.Column("scope_frame_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("ra", sa.Float(), nullable=False),
        sa.Column("dec", sa.Float(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=True),
        sa.Column("source_index", sa.Integer(), nullable=True),
        sa.Column("separation_arcsec", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["frame_id"], ["frames.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_field_objects_night", "field_objects", ["night"])
    op.create_index("ix_field_objects_name", "field_objects", ["name"])


def downgrade() -> None:
    op.drop_index("ix_field_objects_name", table_name="field_objects")
    op.drop_index("ix_field_objects_night", table_name="field_objects")
    op.drop_table("field_objects")
