"""calibrated_mags: drop the frame_id index, which the unique constraint's index already serves

Revision ID: calphot_0002
Revises: calphot_0001
"""

from alembic import op

revision = "calphot_0002"
down_revision = "calphot_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same case as photometry_0002: uq_calibrated_mags_frame_source (frame_id, source_id)
    # is backed by an index that leads with frame_id, so ix_calibrated_mags_frame_id only costs
    # time on every per-source insert.
    op.drop_index("ix_calibrated_mags_frame_id", table_name="calibrated_mags")


def downgrade() -> None:
    op.create_index("ix_calibrated_mags_frame_id", "calibrated_mags", ["frame_id"])
