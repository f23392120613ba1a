"""token scope and sites, and settings kept in the ledger

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:40:00.000000

A ledger that ever had a token keeps tokens required (``tokens_required``): revoking the
last one no longer turns responder checks off.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import axtrace.ledger.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_setting',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('set_at', axtrace.ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('responder_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default='respond'))
        batch_op.add_column(sa.Column('sites', sa.JSON(), nullable=True))
    with op.batch_alter_table('responder_token', schema=None) as batch_op:
        batch_op.alter_column('scope', server_default=None)
    op.execute(
        "INSERT INTO ledger_setting (key, value, set_at) "
        "SELECT 'tokens_required', 'true', MIN(created_at) FROM responder_token "
        "HAVING COUNT(*) > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table('responder_token', schema=None) as batch_op:
        batch_op.drop_column('sites')
        batch_op.drop_column('scope')
    op.drop_table('ledger_setting')
