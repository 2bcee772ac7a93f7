"""results of queued runs, and each process's change-feed position (for pruning the change log)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 22:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_position", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.drop_column("change_position")
    with op.batch_alter_table("training_runs", schema=None) as batch_op:
        batch_op.drop_column("result")
