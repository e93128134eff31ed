"""templates: imported message templates, every version kept (``reconsent templates import``)

Revision ID: 0010_template_store
Revises: 0009_service_heartbeat
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0010_template_store'
down_revision = '0009_service_heartbeat'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('part', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('imported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'locale', 'part', 'version')
    )
    op.create_index('ix_message_template_current', 'message_template', ['name', 'locale', 'part', 'revision'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_template_current', table_name='message_template')
    op.drop_table('message_template')
