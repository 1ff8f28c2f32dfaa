"""profiles name the SIP server's port: the activation file carries host, port and transport

A profile without one lets the client use its transport's standard port (5061 for TLS, 5060 for TCP
and UDP), which is what the file said implicitly until now. A host stored as host:port (the form
accepted that) is split into the two columns; the downgrade joins them again.

Revision ID: 3b8d2f6e1a47
Revises: 7c1e5a9b3f20
Create Date: 2026-12-02 13:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '3b8d2f6e1a47'
down_revision = '7c1e5a9b3f20'
branch_labels = None
depends_on = None


profiles = sa.table('profiles', sa.column('id', sa.Integer), sa.column('sip_host', sa.String),
                    sa.column('sip_port', sa.Integer))


def upgrade():
    with op.batch_alter_table('profiles') as batch_op:
        batch_op.add_column(sa.Column('sip_port', sa.Integer(), nullable=True))
    connection = op.get_bind()
    for id_, host in connection.execute(sa.select(profiles.c.id, profiles.c.sip_host)).all():
        name, colon, port = host.rpartition(':')
        if colon and port.isdigit():
            connection.execute(profiles.update().where(profiles.c.id == id_)
                               .values(sip_host=name, sip_port=int(port)))


def downgrade():
    connection = op.get_bind()
    for id_, host, port in connection.execute(sa.select(profiles.c.id, profiles.c.sip_host, profiles.c.sip_port)
                                              .where(profiles.c.sip_port.is_not(None))).all():
        connection.execute(profiles.update().where(profiles.c.id == id_).values(sip_host=f'{host}:{port}'))
    with op.batch_alter_table('profiles') as batch_op:
        batch_op.drop_column('sip_port')
