"""preference centre: self-service requests (fresh links, data export, erasure)

Revision ID: 0006_prefcentre
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0006_prefcentre'
down_revision = '0005_channels'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('self_service_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('requested_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('self_service_request', schema=None) as batch_op:
        batch_op.create_index('ix_self_service_contact_kind', ['contact_id', 'kind', 'requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('self_service_request', schema=None) as batch_op:
        batch_op.drop_index('ix_self_service_contact_kind')
    op.drop_table('self_service_request')
