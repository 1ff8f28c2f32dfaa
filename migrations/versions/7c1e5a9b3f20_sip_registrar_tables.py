"""the SIP server's tables on PostgreSQL: subscribers and numbers (Provisio writes), registrations (Kamailio)

On SQLite Kamailio has files of its own (`flask registrar-init`), never Provisio's: its SQLite driver
waits for no lock. The tables match models/registrar.py; tests/test_migrations.py compares them.

Revision ID: 7c1e5a9b3f20
Revises: 6cf76a2c5aa3
Create Date: 2026-12-02 08:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '7c1e5a9b3f20'
down_revision = '6cf76a2c5aa3'
branch_labels = None
depends_on = None


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    if not _postgresql():
        return
    op.create_table(
        'sip_subscriber',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('domain', sa.String(length=64), server_default='', nullable=False),
        sa.Column('ha1', sa.String(length=128), nullable=False),
        sa.Column('ha1b', sa.String(length=128), nullable=False),
        sa.Column('enabled', sa.SmallInteger(), nullable=False),
        sa.Column('refusal', sa.String(length=64), server_default='', nullable=False),
        sa.Column('keepalive', sa.SmallInteger(), server_default='0', nullable=False),
        sa.Column('callerid', sa.String(length=20), nullable=False),
        sa.Column('secondary_callerid', sa.String(length=20), nullable=True),
        sa.Column('deny', sa.Text(), server_default='', nullable=False),
        sa.Column('permit', sa.Text(), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id'),
        sa.UniqueConstraint('username', 'domain', name='sip_subscriber_account_idx'),
    )
    op.create_index('sip_subscriber_callerid_idx', 'sip_subscriber', ['callerid'])
    op.create_index('sip_subscriber_secondary_callerid_idx', 'sip_subscriber', ['secondary_callerid'])
    op.create_table(
        'sip_numbers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=20), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('domain', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number'),
    )
    op.create_index('ix_sip_numbers_account_id', 'sip_numbers', ['account_id'])
    op.create_table(
        'sip_location',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ruid', sa.String(length=64), server_default='', nullable=False),
        sa.Column('username', sa.String(length=64), server_default='', nullable=False),
        sa.Column('domain', sa.String(length=64), nullable=True),
        sa.Column('contact', sa.String(length=512), server_default='', nullable=False),
        sa.Column('received', sa.String(length=128), nullable=True),
        sa.Column('path', sa.String(length=512), nullable=True),
        sa.Column('expires', sa.DateTime(), nullable=False),
        sa.Column('q', sa.Float(), server_default='1.0', nullable=False),
        sa.Column('callid', sa.String(length=255), server_default='Default-Call-ID', nullable=False),
        sa.Column('cseq', sa.Integer(), server_default='1', nullable=False),
        sa.Column('last_modified', sa.DateTime(), nullable=False),
        sa.Column('flags', sa.Integer(), server_default='0', nullable=False),
        sa.Column('cflags', sa.Integer(), server_default='0', nullable=False),
        sa.Column('user_agent', sa.String(length=255), server_default='', nullable=False),
        sa.Column('socket', sa.String(length=64), nullable=True),
        sa.Column('methods', sa.Integer(), nullable=True),
        sa.Column('instance', sa.String(length=255), nullable=True),
        sa.Column('reg_id', sa.Integer(), server_default='0', nullable=False),
        sa.Column('server_id', sa.Integer(), server_default='0', nullable=False),
        sa.Column('connection_id', sa.Integer(), server_default='0', nullable=False),
        sa.Column('keepalive', sa.Integer(), server_default='0', nullable=False),
        sa.Column('partition', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ruid', name='sip_location_ruid_idx'),
    )
    op.create_index('sip_location_account_contact_idx', 'sip_location', ['username', 'domain', 'contact'])
    op.create_index('sip_location_expires_idx', 'sip_location', ['expires'])
    op.create_index('sip_location_connection_idx', 'sip_location', ['server_id', 'connection_id'])


def downgrade():
    if not _postgresql():
        return
    op.drop_table('sip_location')
    op.drop_table('sip_numbers')
    op.drop_table('sip_subscriber')
