"""delivery: one canonical Message-ID; the dispatchers holding claims (dead ones are taken over at once)

* ``outbox.message_id`` (and an email's ``provider_id``, the same id) in its canonical form
  ``<left@right>``: a sender written ``Name <address>`` once stored ``<rc.…@domain>>`` while the
  header sent said ``<rc.…@domain>``, so bounces could not match it and ``dsr export`` showed it wrong.
* ``dispatch_worker``: one row per running dispatcher (host, pid, PostgreSQL advisory lock key), read
  to tell a dead claimant's rows from a live one's without waiting for their lease.

Revision ID: 0013_delivery_robust
Revises: 0012_job_paths
"""
from __future__ import annotations

import re

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013_delivery_robust'
down_revision = '0012_job_paths'
branch_labels = None
depends_on = None

_MSGID = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>")


def _canonical(value: str) -> str:
    """As orchestrator.domain.message.canonical_message_id, frozen here (a migration never changes)."""
    found = _MSGID.search(value)
    if found is not None:
        return f"<{found.group(1)}>"
    bare = value.strip().strip("<>").strip()
    return f"<{bare}>" if bare.count("@") == 1 and not any(c.isspace() or c in "<>" for c in bare) else value


def _normalise_message_ids() -> None:
    conn = op.get_bind()
    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("channel", sa.String),
                      sa.column("message_id", sa.String), sa.column("provider_id", sa.String))
    odd = sa.or_(*(sa.or_(c.like("%>>%"), c.like("%<<%"), sa.not_(c.like("<%>")), c.like("% %"))
                   for c in (outbox.c.message_id, outbox.c.provider_id)))
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.message_id, outbox.c.provider_id)
                        .where(outbox.c.channel == "email", odd)).all()
    for row_id, message_id, provider_id in rows:
        values = {}
        if message_id and _canonical(message_id) != message_id:
            values["message_id"] = _canonical(message_id)
        if provider_id and "@" in provider_id and _canonical(provider_id) != provider_id:
            values["provider_id"] = _canonical(provider_id)
        if values:
            conn.execute(sa.update(outbox).where(outbox.c.id == row_id).values(**values))


def upgrade() -> None:
    _normalise_message_ids()
    op.create_table(
        'dispatch_worker',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('host', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('lock_key', sa.Integer(), nullable=False),
        sa.Column('proc_start', sa.BigInteger(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('dispatch_worker')
