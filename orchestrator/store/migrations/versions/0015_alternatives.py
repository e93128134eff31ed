"""alternatives: the value a consent event carries (a frequency, a pause's end date; issue 18 §1)

Revision ID: 0015_alternatives
Revises: 0014_api
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015_alternatives'
down_revision = '0014_api'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_event') as batch:
        batch.add_column(sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('consent_event') as batch:
        batch.drop_column('detail')
