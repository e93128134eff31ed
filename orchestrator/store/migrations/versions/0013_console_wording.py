"""brand: the sender name, logo, primary colour, page texts and privacy URL edited in the console

Revision ID: 0013_console_wording
Revises: 0012_job_paths
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013_console_wording'
down_revision = '0013_marketer_cli'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('brand_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'locale')
    )


def downgrade() -> None:
    op.drop_table('brand_setting')
