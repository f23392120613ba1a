"""keyed seals on alerts

Adds ``trace_seal`` and ``state_seal`` and seals every alert already in the ledger with this
process's ledger key (see :mod:`axtrace.ledger.seal`): what was written before the upgrade is
vouched for from the upgrade on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_seal', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('state_seal', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
    _seal_existing()


def _seal_existing() -> None:
    from axtrace.ledger import seal
    from axtrace.ledger.models import Alert

    table = Alert.__table__  # type: ignore[attr-defined]
    conn = op.get_bind()
    # Only the columns the seals cover that exist now: later revisions add columns (as NULL,
    # which is what the seal takes a missing column for).
    present = {column['name'] for column in sa.inspect(conn).get_columns('alert')}
    sealed = [n for n in ('id', 'trace_len', 'trace_head', *seal.SEALED) if n in present]
    rows = conn.execute(sa.select(*(table.c[name] for name in sealed))).mappings().all()
    if not rows:
        return
    key = seal.ledger_key()
    assert key is not None
    update = table.update().where(table.c.id == sa.bindparam('alert')).values(
        trace_seal=sa.bindparam('trace_seal'), state_seal=sa.bindparam('state_seal'))
    conn.execute(update, [{'alert': row['id'], **seal.seals(key, row['id'], row)}
                          for row in rows])


def downgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_column('state_seal')
        batch_op.drop_column('trace_seal')
