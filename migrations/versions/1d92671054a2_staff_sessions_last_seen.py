"""staff sessions: when each was last seen, so the server ends idle sessions

Revision ID: 1d92671054a2
Revises: 26a90dbfc024
Create Date: 2026-12-02 01:34:06.235891

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '1d92671054a2'
down_revision = '26a90dbfc024'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
    # A session open during the upgrade counts as last seen when it began.
    op.execute("UPDATE staff_sessions SET last_seen_at = created_at")
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.alter_column('last_seen_at', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade():
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
