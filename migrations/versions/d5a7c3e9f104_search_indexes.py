"""search indexes: lower() of the whole-value search fields, for terms and prefix wildcards

Revision ID: d5a7c3e9f104
Revises: c24e1632c005
Create Date: 2026-11-23 12:50:00

Expression indexes, so they live here and not in the models (autogenerate cannot compare them).
SQLite answers `lower(x) = ?` and the prefix range `lower(x) >= ? AND lower(x) < ?` from a plain
index; PostgreSQL needs text_pattern_ops to answer `lower(x) LIKE 'prefix%'` whatever the collation.
"""
from alembic import op

revision = "d5a7c3e9f104"
down_revision = "c24e1632c005"
branch_labels = None
depends_on = None

FIELDS = ("username", "callerid", "email")


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for field in FIELDS:
        opclass = " text_pattern_ops" if postgresql else ""
        op.execute(f"CREATE INDEX ix_accounts_lower_{field} ON accounts (lower({field}){opclass})")


def downgrade():
    for field in FIELDS:
        op.execute(f"DROP INDEX ix_accounts_lower_{field}")
