"""staff two-factor: TOTP secret (encrypted) and the last time step used

Revision ID: 9f2ce808645d
Revises: d5a7c3e9f104
Create Date: 2026-11-23 12:11:44.437382

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '9f2ce808645d'
down_revision = 'd5a7c3e9f104'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))



def downgrade():
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret_encrypted')

