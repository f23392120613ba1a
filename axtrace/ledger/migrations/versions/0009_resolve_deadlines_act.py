"""resolve deadlines act: reminder time and overdue mark on alerts

Adds ``remind_at`` (when the level an acknowledged alert sits at is reminded next, indexed for
the sweeper) and ``overdue_at`` (when the last level's resolve deadline passed). Both start
empty: alerts already open get neither reminders nor a resolve escalation until they are
acknowledged again under this version, since their pinned policy has no ``remind_every``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import axtrace.ledger.models

revision: str = '0009'
# Chained after the newest revision on main (0006); 0007 and 0008 come from other branches
# and the merge re-chains this one after them.
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'remind_at', axtrace.ledger.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column(
            'overdue_at', axtrace.ledger.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_alert_remind_at'), ['remind_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_remind_at'))
        batch_op.drop_column('overdue_at')
        batch_op.drop_column('remind_at')
