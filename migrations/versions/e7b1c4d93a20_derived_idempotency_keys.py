"""derived idempotency keys: forget the keys clients chose, which any client could plant or replay

Keys are now derived on the server from who sent a request and what it was for
(services/idempotency.py); a key stored before holds a value some client chose, such as a
`bulk-<job>-<account>` planted for another group's next bulk send. None of them is needed
once deployed: they only stop a double click within seconds, or a resumed job's repeat.

Revision ID: e7b1c4d93a20
Revises: ab62f15e527a
Create Date: 2026-12-02 01:50:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e7b1c4d93a20'
down_revision = 'ab62f15e527a'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('messages', 'jobs'):
        op.execute(sa.text(f'UPDATE {table} SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL'))


def downgrade():
    pass  # the forgotten keys cannot come back, and the old code needs none of them
