"""worker beats: each worker process notes when it was last alive, for /readyz and the operator

Revision ID: 7c3e5a91b0d2
Revises: 251c23997868
Create Date: 2026-12-02 07:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '7c3e5a91b0d2'
down_revision = '251c23997868'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'worker_beats',
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_beats')),
    )
    op.create_index(op.f('ix_worker_beats_seen_at'), 'worker_beats', ['seen_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_worker_beats_seen_at'), table_name='worker_beats')
    op.drop_table('worker_beats')
