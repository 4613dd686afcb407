"""frames, masters and step runs

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("hdu", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime", sa.Float(), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("kind_inferred", sa.Boolean(), nullable=False),
        sa.Column("kind_source", sa.String(length=64), nullable=True),
        sa.Column("filter", sa.String(length=64), nullable=True),
        sa.Column("exptime", sa.Float(), nullable=True),
        sa.Column("xbin", sa.Integer(), nullable=True),
        sa.Column("ybin", sa.Integer(), nullable=True),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.Column("offset", sa.Float(), nullable=True),
        sa.Column("readout_mode", sa.String(length=64), nullable=True),
        sa.Column("ccd_temp", sa.Float(), nullable=True),
        sa.Column("set_temp", sa.Float(), nullable=True),
        sa.Column("naxis1", sa.Integer(), nullable=True),
        sa.Column("naxis2", sa.Integer(), nullable=True),
        sa.Column("object", sa.String(length=128), nullable=True),
        sa.Column("ra", sa.Float(), nullable=True),
        sa.Column("dec", sa.Float(), nullable=True),
        sa.Column("observer", sa.String(length=128), nullable=True),
        sa.Column("site", sa.String(length=128), nullable=True),
        sa.Column("telescope", sa.String(length=128), nullable=True),
        sa.Column("instrument", sa.String(length=128), nullable=True),
        sa.Column("date_obs", sa.String(length=64), nullable=True),
        sa.Column("mid_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jd_utc", sa.Float(), nullable=True),
        sa.Column("bjd_tdb", sa.Float(), nullable=True),
        sa.Column("time_source", sa.String(length=256), nullable=True),
        sa.Column("night", sa.String(length=10), nullable=True),
        sa.Column("header", sa.JSON(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frames")),
        sa.UniqueConstraint("path", "hdu", name="uq_frames_path_hdu"),
    )
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frames_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_mid_utc"), ["mid_utc"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_night"), ["night"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_path"), ["path"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_sha1"), ["sha1"], unique=False)
        batch_op.create_index(batch_op.f("ix_frames_status"), ["status"], unique=False)

    op.create_table(
        "masters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("xbin", sa.Integer(), nullable=True),
        sa.Column("ybin", sa.Integer(), nullable=True),
        sa.Column("naxis1", sa.Integer(), nullable=True),
        sa.Column("naxis2", sa.Integer(), nullable=True),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.Column("offset", sa.Float(), nullable=True),
        sa.Column("readout_mode", sa.String(length=64), nullable=True),
        sa.Column("filter", sa.String(length=64), nullable=True),
        sa.Column("exptime", sa.Float(), nullable=True),
        sa.Column("ccd_temp", sa.Float(), nullable=True),
        sa.Column("bias_included", sa.Boolean(), nullable=False),
        sa.Column("obs_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nframes", sa.Integer(), nullable=False),
        sa.Column("inputs_hash", sa.String(length=64), nullable=False),
        sa.Column("settings_hash", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("software", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_masters")),
        sa.UniqueConstraint("path", name=op.f("uq_masters_path")),
    )
    with op.batch_alter_table("masters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_masters_inputs_hash"), ["inputs_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_masters_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_masters_obs_time"), ["obs_time"], unique=False)

    op.create_table(
        "step_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("frame_id", sa.Integer(), nullable=True),
        sa.Column("night", sa.String(length=10), nullable=True),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("input_hash", sa.String(length=64), nullable=True),
        sa.Column("output_path", sa.String(length=1024), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["frame_id"], ["frames.id"], name=op.f("fk_step_runs_frame_id_frames"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_runs")),
        sa.UniqueConstraint("frame_id", "step", name="uq_step_runs_frame_step"),
    )
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_step_runs_frame_id"), ["frame_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_step_runs_night"), ["night"], unique=False)
        batch_op.create_index(batch_op.f("ix_step_runs_step"), ["step"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_step_runs_step"))
        batch_op.drop_index(batch_op.f("ix_step_runs_night"))
        batch_op.drop_index(batch_op.f("ix_step_runs_frame_id"))

    op.drop_table("step_runs")
    with op.batch_alter_table("masters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_masters_obs_time"))
        batch_op.drop_index(batch_op.f("ix_masters_kind"))
        batch_op.drop_index(batch_op.f("ix_masters_inputs_hash"))

    op.drop_table("masters")
    with op.batch_alter_table("frames", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frames_status"))
        batch_op.drop_index(batch_op.f("ix_frames_sha1"))
        batch_op.drop_index(batch_op.f("ix_frames_path"))
        batch_op.drop_index(batch_op.f("ix_frames_night"))
        batch_op.drop_index(batch_op.f("ix_frames_mid_utc"))
        batch_op.drop_index(batch_op.f("ix_frames_kind"))

    op.drop_table("frames")
