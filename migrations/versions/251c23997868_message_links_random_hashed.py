"""secure links carry random bits: messages keep their hash (and the bits, encrypted, until sent)

Revision ID: 251c23997868
Revises: 4f1c2a7d9e30
Create Date: 2026-12-02 01:37:58.693022

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '251c23997868'
down_revision = '4f1c2a7d9e30'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('link_nonce_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('link_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_link_hash'), ['link_hash'], unique=True)
    # A message queued before the upgrade has no random link to send (and the links already sent,
    # signed [account id, version, hint], no longer verify): fail it with a reason, to be sent again.
    op.execute(sa.text(
        "UPDATE messages SET status = 'failed', lease_until = NULL, "
        "last_error = 'Queued before the secure-link upgrade: send the link again.' WHERE status = 'queued'"
    ))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_link_hash'))
        batch_op.drop_column('link_used_at')
        batch_op.drop_column('link_nonce_encrypted')
        batch_op.drop_column('link_hash')
