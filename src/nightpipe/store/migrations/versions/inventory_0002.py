"""frames.gain_setting, masters.gain_setting: the CMOS gain setting, apart from the e-/ADU

Revision ID: inventory_0002
Revises: inventory_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "inventory_0002"
down_revision = "inventory_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("frames", "masters"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("gain_setting", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("frames", "masters"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("gain_setting")
