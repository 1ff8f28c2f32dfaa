"""The `flask` commands, through the app's CLI runner."""

import re

from sqlalchemy import func, select

from extensions import db
from models import Account, Role, StaffUser, Status, StatusEvent
from tests.support import Client


def run(app, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def staff_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StaffUser))


def test_setup_creates_the_first_admin_and_prints_a_working_password(app):
    result = run(app, "setup")

    assert result.exit_code == 0, result.output
    password = re.search(r"password: (\S+)", result.output).group(1)
    with app.app_context():
        admin = db.session.scalar(select(StaffUser))
        assert (admin.username, admin.role) == ("admin", Role.ADMIN)
    assert Client(app).login("admin", password).status_code == 302


def test_setup_run_again_changes_nothing_and_prints_no_password(app):
    first = run(app, "setup")
    with app.app_context():
        hash_before = db.session.scalar(select(StaffUser.password_hash))

    second = run(app, "setup")

    assert "password:" in first.output
    assert second.exit_code == 0, second.output
    assert "password" not in second.output.lower()
    assert staff_count(app) == 1
    with app.app_context():
        assert db.session.scalar(select(StaffUser.password_hash)) == hash_before


def test_setup_prints_no_password_when_staff_already_exist(app, admin_id):
    result = run(app, "setup")

    assert result.exit_code == 0, result.output
    assert "password" not in result.output.lower()
    assert staff_count(app) == 1


def test_create_admin_creates_an_administrator(app):
    result = run(app, "create-admin", "bob", input="a long and strong passphrase\n" * 2)

    assert result.exit_code == 0, result.output
    assert "Administrator bob created." in result.output
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == "bob"))
        assert user.role is Role.ADMIN
    assert Client(app).login("bob", "a long and strong passphrase").status_code == 302


def test_create_admin_refuses_a_weak_password_with_a_clear_message(app):
    result = run(app, "create-admin", "bob", input="short\nshort\n")

    assert result.exit_code == 1
    assert "Error: Use at least 12 characters." in result.output
    assert staff_count(app) == 0


def test_create_admin_refuses_a_taken_username(app, admin_id):
    result = run(app, "create-admin", "Alice", input="a long and strong passphrase\n" * 2)

    assert result.exit_code == 1
    assert "already taken" in result.output
    assert staff_count(app) == 1


def test_seed_demo_creates_accounts_spread_over_several_statuses(app):
    result = run(app, "seed-demo", "--accounts", "50")

    assert result.exit_code == 0, result.output
    with app.app_context():
        accounts = list(db.session.scalars(select(Account)))
        assert len(accounts) == 50
        assert len({account.status for account in accounts}) >= 4
        for account in accounts:
            history = [event.status for event in account.status_events]
            assert history[0] is account.status  # newest first
            assert sorted(history, key=lambda status: status.rank) == list(Status)[: account.status.rank + 1]
        assert db.session.scalar(select(func.count()).select_from(StatusEvent)) >= 50


def test_reset_password_prints_a_new_password_once_that_signs_in(app):
    first = re.search(r"password: (\S+)", run(app, "setup").output).group(1)

    result = run(app, "reset-password", "admin")

    assert result.exit_code == 0, result.output
    new = re.search(r"shown once: (\S+)", result.output).group(1)
    assert new != first
    assert Client(app).login("admin", first).status_code == 200  # refused: the form again
    assert Client(app).login("admin", new).status_code == 302
    assert run(app, "reset-password", "nobody").exit_code == 1
