"""policy history

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import axtrace.ledger.models

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('policy_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
    sa.Column('at', axtrace.ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('where', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('old_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('new_version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq')
    )
    with op.batch_alter_table('policy_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_change_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_policy_change_site'), ['site'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('policy_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_change_site'))
        batch_op.drop_index(batch_op.f('ix_policy_change_at'))
    op.drop_table('policy_change')
