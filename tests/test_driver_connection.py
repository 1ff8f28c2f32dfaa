"""extensions.DriverConnection, which the link page and the activation run their statements on: rows
typed as Core types them, parameters through their column types, no Python default run behind the
caller's back, and nothing kept of a transaction left uncommitted."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update

from extensions import DriverConnection, DriverStatement, db
from models import Account, AuditEvent, Status

ROW = select(Account.__table__).where(Account.id == bindparam("account_id"))


def test_a_row_reads_as_core_reads_it(app, make_account):
    account_id = make_account(wizard=True)
    with app.app_context():
        with db.engine.connect() as connection:
            core = connection.execute(ROW, {"account_id": account_id}).one()
        with DriverConnection(db.engine) as connection:
            row = connection.one_or_none(DriverStatement(ROW), {"account_id": account_id})

    assert row._asdict() == core._asdict()
    assert row.status is Status.CREATED  # the enum, not its stored string
    assert row.wizard is True and row.created_at.tzinfo is UTC  # a bool and an aware UTC time


def test_no_row_is_none(app):
    with app.app_context(), DriverConnection(db.engine) as connection:
        assert connection.one_or_none(DriverStatement(ROW), {"account_id": 10**9}) is None


def test_written_values_go_through_their_column_types(app, make_account):
    account_id = make_account()
    at = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    statement = DriverStatement(update(Account).where(Account.id == bindparam("b_id")))
    with app.app_context():
        with DriverConnection(db.engine) as connection:
            changed = connection.execute(statement, {"b_id": account_id, "status": Status.ACTIVATED,
                                                     "status_changed_at": at, "updated_at": at})
            connection.commit()
        account = db.session.get(Account, account_id)

        assert changed == 1
        assert account.status is Status.ACTIVATED and account.status_changed_at == at


def test_a_statement_that_needs_a_python_default_refuses_to_run(app):
    statement = DriverStatement(insert(AuditEvent))  # created_at's default is utcnow, in Python
    with (app.app_context(), DriverConnection(db.engine) as connection,
          pytest.raises(ValueError, match="created_at")):
        connection.execute(statement, {"actor": "test", "action": "test.driver", "outcome": "ok",
                                       "detail": {}})


def test_what_is_not_committed_is_rolled_back(app, make_account):
    account_id = make_account()
    statement = DriverStatement(update(Account).where(Account.id == bindparam("b_id")))
    with app.app_context():
        with DriverConnection(db.engine) as connection:
            connection.execute(statement, {"b_id": account_id, "owner": "Not kept",
                                           "updated_at": datetime.now(UTC)})

        assert db.session.get(Account, account_id).owner == "Anna Meier"
