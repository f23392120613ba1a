"""detector heartbeats: when each watched detector was last heard, and its silence's alert

Adds the table ``heartbeat``: one row per (site, detector) a policy watches or that sent a
heartbeat. The sweeper raises one alert per silence (``silent_alert_id``) and the next
heartbeat clears it, so a restart neither forgets a silence nor raises it twice.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import axtrace.ledger.models

revision: str = '0011'
# Chained after 0009 on main; 0010 comes from another branch and the merge re-chains this one.
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'heartbeat',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column('detector', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('watched_since', axtrace.ledger.models.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('last_seen_at', axtrace.ledger.models.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('last_via', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('beats', sa.Integer(), nullable=False),
        sa.Column('silent_alert_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['silent_alert_id'], ['alert.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('site', 'detector', name='uq_heartbeat_site_detector'),
    )


def downgrade() -> None:
    op.drop_table('heartbeat')
