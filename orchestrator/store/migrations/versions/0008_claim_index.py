"""dispatch: ix_outbox_due is keyed by campaign, so a claim never walks past a paused campaign's rows

With (status, due_at, id), the due rows of a paused or draft campaign sat in the index in front of a
running campaign's rows: every claim of 200 rows walked past all of them (a million rows of a
paused campaign made each claim ~100 ms). A claim now reads each running campaign's due rows from
(status, campaign_id, due_at, id), in order.

Revision ID: 0008_claim_index
Revises: 0007_dispatch_index
"""
from __future__ import annotations

from alembic import op


revision = '0008_claim_index'
down_revision = '0007_dispatch_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'campaign_id', 'due_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'due_at', 'id'], unique=False)
