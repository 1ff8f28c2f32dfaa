"""Bulk delivery at the provider's pace: each gateway's next send slot, shared by every worker; and the
text of a message as first rendered, so every try sends the same text.

Revision ID: 5e2a9c4b7d10
Revises: 8d4f2b6c1e73
Create Date: 2026-12-02 15:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '5e2a9c4b7d10'
down_revision = '8d4f2b6c1e73'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('gateway_paces',
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('next_slot', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('gateway', name=op.f('pk_gateway_paces'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_encrypted', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('text_encrypted')
    op.drop_table('gateway_paces')
