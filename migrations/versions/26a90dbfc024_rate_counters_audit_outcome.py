"""rate counters (atomic rate limits) and the outcome of every audit event

Revision ID: 26a90dbfc024
Revises: a84a15944c2a
Create Date: 2026-12-02 01:28:51.869143

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '26a90dbfc024'
down_revision = 'a84a15944c2a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rate_counters',
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counters'))
    )
    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_counters_window_start'), ['window_start'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=32), server_default='ok', nullable=False))



def downgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('outcome')

    with op.batch_alter_table('rate_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_counters_window_start'))

    op.drop_table('rate_counters')
