"""proof: data-subject request register

Revision ID: 0002_proof
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_proof"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dsr_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject_channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("handled_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("handled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dsr_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dsr_request_subject_key"), ["subject_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_dsr_request_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dsr_request_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dsr_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dsr_request_state"))
        batch_op.drop_index(batch_op.f("ix_dsr_request_due_at"))
        batch_op.drop_index(batch_op.f("ix_dsr_request_subject_key"))
    op.drop_table("dsr_request")
