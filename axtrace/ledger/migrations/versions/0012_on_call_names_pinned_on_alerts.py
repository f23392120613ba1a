"""on-call names pinned on alerts

Adds ``on_call`` (JSON: level as text to the names on call when the alert reached that level,
from the level's on-call calendar or its fallback). Empty on alerts already open: their levels
are called by their responders, as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_call', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('on_call')
