"""snom settings secret: a phone's settings URL carries a per-phone secret, kept only as a hash

Revision ID: ab62f15e527a
Revises: 1d92671054a2
Create Date: 2026-12-02 01:35:08.343555

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'ab62f15e527a'
down_revision = '1d92671054a2'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTERs, no batch: a batch copy of accounts on SQLite would drop the hand-written
    # lower() search indexes (revision d5a7c3e9f104), which reflection cannot see.
    op.add_column('accounts', sa.Column('snom_secret_hash', sa.String(length=64), nullable=True))
    op.add_column('accounts', sa.Column('snom_secret_set_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_accounts_snom_secret_hash'), 'accounts', ['snom_secret_hash'], unique=True)


def downgrade():
    op.drop_index(op.f('ix_accounts_snom_secret_hash'), table_name='accounts')
    op.drop_column('accounts', 'snom_secret_set_at')
    op.drop_column('accounts', 'snom_secret_hash')
