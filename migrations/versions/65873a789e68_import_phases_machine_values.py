"""import phases are machine values: the pages say each step in words, the job stores its name

An import's phase was the sentence its progress page showed, and the state machine's key too; it is now
a short name (services/imports/job.py Phase), worded by templates/imports/_phases.html. Imports stored
before the upgrade, waiting for their check or their confirmation, move on under the new names.

Revision ID: 65873a789e68
Revises: 7c3e5a91b0d2
Create Date: 2026-12-03 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '65873a789e68'
down_revision = '7c3e5a91b0d2'
branch_labels = None
depends_on = None

# The sentences as the older release stored them, and the names that replace them.
PHASES = {
    'Waiting for the worker to check the rows': 'waiting',
    'Checking rows': 'checking',
    'Checked': 'checked',
    'Confirmed, waiting for the worker to write the accounts': 'confirmed',
    'Checking against the database and writing the accounts': 'writing',
    'Sending messages': 'sending',
    'Imported': 'imported',
}
jobs = sa.table('jobs', sa.column('kind', sa.String), sa.column('phase', sa.String))


def _rename(names):
    for old, new in names.items():
        op.execute(jobs.update().where(jobs.c.kind == 'import', jobs.c.phase == old).values(phase=new))


def upgrade():
    _rename(PHASES)


def downgrade():
    _rename({new: old for old, new in PHASES.items()})
