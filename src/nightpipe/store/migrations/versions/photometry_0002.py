"""measurements: drop the frame_id index, which the unique constraint's index already serves

Revision ID: photometry_0002
Revises: photometry_0001
"""

from alembic import op

revision = "photometry_0002"
down_revision = "photometry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # uq_measurements_frame_source (frame_id, source_index) is backed by an index that leads
    # with frame_id: it answers lookups and deletes by frame_id (and the cascade from frames),
    # so ix_measurements_frame_id only costs time on each of a night's ~150k inserts.
    op.drop_index("ix_measurements_frame_id", table_name="measurements")


def downgrade() -> None:
    op.create_index("ix_measurements_frame_id", "measurements", ["frame_id"])
