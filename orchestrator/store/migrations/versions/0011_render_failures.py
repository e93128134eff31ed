"""dispatch: a message that cannot be built fails its row; too many pause the campaign, with the reason

``campaign.build_failures`` counts the messages of a campaign that could not be built since its launch
or last resume; when it reaches ``dispatch.failure_pause_threshold`` dispatch pauses the campaign and
writes why in ``campaign.paused_reason`` (shown by ``campaign status`` and the console).

Revision ID: 0011_render_failures
Revises: 0010_template_store
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011_render_failures'
down_revision = '0010_template_store'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE … ADD/DROP COLUMN (SQLite ≥ 3.35, PostgreSQL): a batch-mode table rebuild
    # would drop ``campaign`` while ``enrolment`` and ``outbox`` rows still reference it.
    op.add_column('campaign', sa.Column('paused_reason', sa.Text(), nullable=True))
    op.add_column('campaign', sa.Column('build_failures', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    op.drop_column('campaign', 'build_failures')
    op.drop_column('campaign', 'paused_reason')
