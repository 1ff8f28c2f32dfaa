"""job idempotency key: a double-clicked bulk confirmation starts one job

Revision ID: a84a15944c2a
Revises: 9f2ce808645d
Create Date: 2026-11-23 12:15:44.395067

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a84a15944c2a'
down_revision = '9f2ce808645d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_idempotency_key'), ['idempotency_key'])



def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_jobs_idempotency_key'), type_='unique')
        batch_op.drop_column('idempotency_key')

