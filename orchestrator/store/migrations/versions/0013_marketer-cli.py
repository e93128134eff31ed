"""campaigns: a planned launch (``campaign launch ID --at``)

``campaign.launch_at`` is when a ``scheduled`` campaign is to be launched (its audience frozen then,
by the scheduler's ``launch`` job); None for any other campaign.

Revision ID: 0013_marketer_cli
Revises: 0012_job_paths
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013_marketer_cli'
down_revision = '0013_console_security'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD/DROP COLUMN (as 0011): a batch rebuild would drop ``campaign`` under its references
    op.add_column('campaign', sa.Column('launch_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('campaign', 'launch_at')
