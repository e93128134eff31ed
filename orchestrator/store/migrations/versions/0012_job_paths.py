"""scheduler: stored jobs name their function by its new module path (orchestrator.ops.scheduler)

The modules moved into feature packages; APScheduler keeps each job's function as a text reference
inside its pickled state (``orchestrator.scheduler:run_job``). This rewrites the references of the
jobs already stored, both ways, so a scheduler restarted on the new code keeps their next run times
(and a missed run still catches up once).

Revision ID: 0012_job_paths
Revises: 0011_render_failures
"""
from __future__ import annotations

import pickle

import sqlalchemy as sa
from alembic import op


revision = '0012_job_paths'
down_revision = '0011_render_failures'
branch_labels = None
depends_on = None

OLD, NEW = "orchestrator.scheduler:", "orchestrator.ops.scheduler:"


def _rewrite(old: str, new: str) -> None:
    conn = op.get_bind()
    if not sa.inspect(conn).has_table("apscheduler_jobs"):
        return
    jobs = sa.table("apscheduler_jobs", sa.column("id", sa.Unicode), sa.column("job_state", sa.LargeBinary))
    for job_id, blob in conn.execute(sa.select(jobs.c.id, jobs.c.job_state)).all():
        state = pickle.loads(blob)  # noqa: S301 - our own scheduler's rows
        func = state.get("func")
        if isinstance(func, str) and func.startswith(old):
            state["func"] = new + func[len(old):]
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id)
                         .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL)))


def upgrade() -> None:
    _rewrite(OLD, NEW)


def downgrade() -> None:
    _rewrite(NEW, OLD)
