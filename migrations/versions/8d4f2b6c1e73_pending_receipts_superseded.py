"""Receipts that come before their send is recorded wait in pending_receipts; a message a newer send
replaced before it left is "superseded", not "failed".

Revision ID: 8d4f2b6c1e73
Revises: 3b8d2f6e1a47
Create Date: 2025-01-20 10:00:00

Messages stay a plain string column (no enum constraint, see models/base.py enum_type): the new
status needs no schema change, only the rows the worker failed for that reason are relabelled.
"""
import sqlalchemy as sa
from alembic import op


revision = '8d4f2b6c1e73'
down_revision = '3b8d2f6e1a47'
branch_labels = None
depends_on = None

SUPERSEDED_REASON = 'superseded by a newer link before sending'


def upgrade():
    op.create_table('pending_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('provider_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_receipts')),
    sa.UniqueConstraint('gateway', 'provider_id', name=op.f('uq_pending_receipts_gateway'))
    )
    with op.batch_alter_table('pending_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_receipts_received_at'), ['received_at'], unique=False)
    op.execute(sa.text("UPDATE messages SET status = 'superseded' WHERE status = 'failed' "
                       "AND last_error = :reason").bindparams(reason=SUPERSEDED_REASON))


def downgrade():
    op.execute(sa.text("UPDATE messages SET status = 'failed', last_error = :reason "
                       "WHERE status = 'superseded'").bindparams(reason=SUPERSEDED_REASON))
    with op.batch_alter_table('pending_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_receipts_received_at'))
    op.drop_table('pending_receipts')
