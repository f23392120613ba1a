"""maintenance windows: when a suppressed alert is released

Adds ``suppressed_until`` (while a maintenance window holds an alert back, when it ends;
indexed for the sweeper, which wakes the alert's run then). It starts empty: alerts already
open were never suppressed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import axtrace.ledger.models

revision: str = '0010'
# Chained after the newest revision on main (0009); the merge re-chains it after any other
# branch's revision.
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'suppressed_until', axtrace.ledger.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_alert_suppressed_until'), ['suppressed_until'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_suppressed_until'))
        batch_op.drop_column('suppressed_until')
