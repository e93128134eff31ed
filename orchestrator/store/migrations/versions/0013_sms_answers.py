"""sms answers: when an SMS reply we did not understand was last answered, per number (keyed hash);
the inbound MessageSids already applied (a webhook delivered twice changes nothing)

Revision ID: 0013_sms_answers
Revises: 0012_job_paths
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013_sms_answers'
down_revision = '0013_delivery_robust'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sms_reply_notice',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('replied_on', sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_table(
        'sms_inbound_seen',
        sa.Column('message_sid', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('message_sid'),
    )


def downgrade() -> None:
    op.drop_table('sms_inbound_seen')
    op.drop_table('sms_reply_notice')
