"""account terms: the words of owner and description, with their positions, so the search matches words

Revision ID: 6cf76a2c5aa3
Revises: 65873a789e68
Create Date: 2026-12-03 10:12:41

The search treats owner and description as Lucene treats text fields: a term is a word, a phrase is
consecutive words. Each word sits in account_terms beside its account, field and position, indexed by
(field, term), so a word or a phrase is found without reading every account. The existing accounts' words
are filled here, cut as the app cuts them (models.account.words, copied below as it is today).
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "6cf76a2c5aa3"
down_revision = "65873a789e68"
branch_labels = None
depends_on = None

FIELDS = ("owner", "description")
MAX_WORD = 255
RUNS = re.compile(r"[\w\u0300-\u036f]+")
BATCH = 5_000


def upgrade():
    op.create_table(
        "account_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=MAX_WORD), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE",
                                name=op.f("fk_account_terms_account_id_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_terms")),
    )
    with op.batch_alter_table("account_terms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_terms_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_account_terms_field_term", ["field", "term", "account_id", "position"],
                              unique=False, postgresql_ops={"term": "text_pattern_ops"})
    _fill()


def _words(value):
    terms = []
    for run in RUNS.findall(value or ""):
        for word in run.split("_"):
            folded = word.lower()
            terms += [folded[start:start + MAX_WORD] for start in range(0, len(folded), MAX_WORD)]
    return terms


def _fill():
    """Cut every account's owner and description into words, in Python as the app does, a batch at a time."""
    accounts = sa.table("accounts", sa.column("id"), *(sa.column(field) for field in FIELDS))
    terms = sa.table("account_terms", sa.column("account_id"), sa.column("field"), sa.column("position"),
                     sa.column("term"))
    bind = op.get_bind()
    last = 0
    while rows := bind.execute(sa.select(accounts).where(accounts.c.id > last).order_by(accounts.c.id)
                               .limit(BATCH)).all():
        last = rows[-1].id
        values = [{"account_id": row.id, "field": field, "position": position, "term": term}
                  for row in rows for field in FIELDS
                  for position, term in enumerate(_words(getattr(row, field)))]
        if values:
            bind.execute(terms.insert(), values)


def downgrade():
    with op.batch_alter_table("account_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_account_terms_field_term")
        batch_op.drop_index(batch_op.f("ix_account_terms_account_id"))
    op.drop_table("account_terms")
