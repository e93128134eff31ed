"""service: heartbeats of the dispatcher and scheduler processes (the console shows who is alive)

Revision ID: 0009_service_heartbeat
Revises: 0008_claim_index
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009_service_heartbeat'
down_revision = '0008_claim_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'service_heartbeat',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('host', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_service_heartbeat_role'), 'service_heartbeat', ['role'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_service_heartbeat_role'), table_name='service_heartbeat')
    op.drop_table('service_heartbeat')
