"""search on folded columns, not lower() expression indexes: the stock sqlite3 integrity_check says ok

Revision ID: 4f1c2a7d9e30
Revises: e7b1c4d93a20
Create Date: 2026-12-02 01:40:09

The app's Unicode lower() on SQLite built the indexes of d5a7c3e9f104; SQLite's own lower() (the
sqlite3 tool's) folds ASCII only, so integrity_check called a healthy file corrupt. The app now keeps
each whole-value search field beside it in lower case, in plain indexed columns, on both databases
(text_pattern_ops on PostgreSQL, so LIKE 'prefix%' stays indexed in any collation).
"""
import sqlalchemy as sa
from alembic import op

revision = "4f1c2a7d9e30"
down_revision = 'e7b1c4d93a20'
branch_labels = None
depends_on = None

FIELDS = {"username": 64, "callerid": 20, "email": 254}


def upgrade():
    for field in FIELDS:
        op.execute(f"DROP INDEX ix_accounts_lower_{field}")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for field, length in FIELDS.items():
            batch_op.add_column(sa.Column(f"{field}_folded", sa.String(length=length), server_default="",
                                          nullable=False))
    _fill()
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for field in FIELDS:
            batch_op.create_index(f"ix_accounts_{field}_folded", [f"{field}_folded"], unique=False,
                                  postgresql_ops={f"{field}_folded": "text_pattern_ops"})


def _fill():
    """Fold the existing rows in Python, as the app does (models.account.fold), whatever lower() SQL has."""
    accounts = sa.table("accounts", sa.column("id"), *(sa.column(field) for field in FIELDS),
                        *(sa.column(f"{field}_folded") for field in FIELDS))
    bind = op.get_bind()
    rows = bind.execute(sa.select(accounts.c.id, *(accounts.c[field] for field in FIELDS))).all()
    if rows:
        bind.execute(
            accounts.update().where(accounts.c.id == sa.bindparam("b_id"))
            .values({f"{field}_folded": sa.bindparam(f"b_{field}") for field in FIELDS}),
            [{"b_id": row.id, **{f"b_{field}": (getattr(row, field) or "").lower() for field in FIELDS}}
             for row in rows],
        )


def downgrade():
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for field in FIELDS:
            batch_op.drop_index(f"ix_accounts_{field}_folded")
        for field in FIELDS:
            batch_op.drop_column(f"{field}_folded")
    postgresql = op.get_bind().dialect.name == "postgresql"
    for field in FIELDS:
        opclass = " text_pattern_ops" if postgresql else ""
        op.execute(f"CREATE INDEX ix_accounts_lower_{field} ON accounts (lower({field}){opclass})")
