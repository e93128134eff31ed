"""console accounts: disabled users, a TOTP secret, and failed sign-ins per account and address (issue 15)

``admin_user.disabled_at`` ends an account's access without deleting it; ``admin_user.totp_secret`` holds
an optional second factor (``totp_last_step``: no code is accepted twice); ``admin_login_block`` counts failed sign-ins per (account, client address),
so a lockout only ever blocks the address that guessed.

Revision ID: 0013_console_security
Revises: 0012_job_paths
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0013_console_security'
down_revision = '0013_sms_answers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite, PostgreSQL): a batch rebuild would drop admin_user under its sessions
    op.add_column('admin_user', sa.Column('disabled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('admin_user', sa.Column('totp_secret', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column('admin_user', sa.Column('totp_last_step', sa.Integer(), nullable=True))
    op.create_table(
        'admin_login_block',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('blocks', sa.Integer(), nullable=False),
        sa.Column('blocked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('user_id', 'ip'),
    )


def downgrade() -> None:
    op.drop_table('admin_login_block')
    # plain DROP COLUMN (SQLite ≥ 3.35, PostgreSQL): a batch rebuild would drop admin_user under its sessions
    op.drop_column('admin_user', 'totp_last_step')
    op.drop_column('admin_user', 'totp_secret')
    op.drop_column('admin_user', 'disabled_at')
