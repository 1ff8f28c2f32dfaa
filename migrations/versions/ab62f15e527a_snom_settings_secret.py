"""snom settings secret: a phone's settings URL carries a per-phone secret, kept only as a hash

Revision ID: ab62f15e527a
Revises: 26a90dbfc024
Create Date: 2026-12-02 01:35:08.343555

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'ab62f15e527a'
down_revision = '26a90dbfc024'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('snom_secret_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('snom_secret_set_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_accounts_snom_secret_hash'), ['snom_secret_hash'], unique=True)


def downgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_snom_secret_hash'))
        batch_op.drop_column('snom_secret_set_at')
        batch_op.drop_column('snom_secret_hash')
