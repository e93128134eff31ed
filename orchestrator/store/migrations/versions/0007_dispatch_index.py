"""dispatch: ix_outbox_due also orders by id, so a claim walks the index in (due_at, id) order

Rows due at the same instant (every first message of a launch) are then read in order from the
index on PostgreSQL too, instead of sorting the whole group on every claim (SQLite already appends
the rowid to every index).

Revision ID: 0007_dispatch_index
Revises: 0006_prefcentre
"""
from __future__ import annotations

from alembic import op


revision = '0007_dispatch_index'
down_revision = '0006_prefcentre'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'due_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_due', table_name='outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'due_at'], unique=False)
