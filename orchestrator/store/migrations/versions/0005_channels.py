"""channels: provider status on outbox rows, bounce reports

Revision ID: 0005_channels
Revises: 0001
Create Date: 2026-11-25 01:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0005_channels'
down_revision = '0004_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_status', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_table('bounce',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounce_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_outbox_id'), ['outbox_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_outbox_id'))
        batch_op.drop_index(batch_op.f('ix_bounce_key'))
    op.drop_table('bounce')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('provider_status')
