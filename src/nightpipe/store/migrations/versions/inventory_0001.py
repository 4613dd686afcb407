"""frames.settings_hash: rescan what was normalised with other settings

Revision ID: inventory_0001
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0001"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings_hash", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.drop_column("settings_hash")
