"""`flask backup` while the app runs and `flask restore`, which revives nothing used after the backup:
each on a database of its own (an SQLite file, or a scratch PostgreSQL database beside the test one)."""

import re
import threading
import uuid

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from app import create_app
from extensions import db
from models import Account, AccountType, Group, Profile, Role, Status, StatusEvent
from services import accounts, staff
from tests.support import Client, make_config
from tests.webtools import issue_link

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """A database of the test's own, of the suite's kind; dropped afterwards."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.db'}"
        return
    name = f"restore_{uuid.uuid4().hex[:12]}"
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    server.dispose()


def fresh(url: str):
    app = create_app(make_config(url))
    with app.app_context():
        upgrade()
        profile = Profile(name="Default", sip_host="sip.example.net", provisioning_host="prov.example.net")
        db.session.add(Group(name="Sales", profile=profile))
        db.session.commit()
        staff.create(username="alice", password=PASSWORD, role=Role.ADMIN, actor="test")
    return app


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def make_wizard_account(app, n: int) -> int:
    with app.app_context():
        data = {"account_type": "pgsm", "username": f"5550{n:04d}", "callerid": f"+4179555{n:04d}",
                "owner": "Anna", "email": f"anna{n}@example.com", "description": "",
                "security_model": "end-to-end", "obfuscation": True, "obfuscation_key": "9",
                "keepalive": False, "mac_address": None, "group_id": db.session.scalar(select(Group.id)),
                "profile_id": None, "secondary_callerid": None, "licence_expires_on": None}
        return accounts.create(data, wizard=True, actor=staff.find("alice")).id


def activate(app, token: str) -> int:
    """Tap Activate on a phone as a person does; the status the link answered."""
    phone = app.test_client()
    page = phone.get(f"/m/{token}", headers={"User-Agent": IPHONE})
    if page.status_code != 200:
        return page.status_code
    form = {"csrf_token": CSRF.search(page.get_data(as_text=True)).group(1), "platform": "ios"}
    return phone.post(f"/m/{token}/activate", data=form, headers={"User-Agent": IPHONE}).status_code


def test_a_backup_taken_while_the_app_writes_is_one_consistent_snapshot(scratch_url, tmp_path):
    app = fresh(scratch_url)
    with app.app_context():
        group_id = db.session.scalar(select(Group.id))
    stop, written = threading.Event(), []

    def writer():  # the running app: an account and its first status event, one transaction each
        with app.app_context():
            while not stop.is_set():
                n = len(written) + 1
                account_id = db.session.execute(insert(Account).returning(Account.id), [{
                    "username": f"w{n}", "username_folded": f"w{n}", "callerid": f"+41790{n:06d}",
                    "callerid_folded": f"+41790{n:06d}", "email_folded": "", "password_encrypted": "x",
                    "account_type": AccountType.PGSM, "group_id": group_id}]).scalar_one()
                db.session.add(StatusEvent(account_id=account_id, status=Status.CREATED, actor="test"))
                db.session.commit()
                written.append(account_id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        result = cli(app, "backup", str(tmp_path / "copy"))
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output

    assert cli(app, "restore", str(tmp_path / "copy"), "--replace").exit_code == 0
    with create_app(make_config(scratch_url)).app_context():
        in_copy = db.session.scalar(text("SELECT count(*) FROM accounts"))
        events = db.session.scalar(text("SELECT count(*) FROM status_events"))
    assert 20 <= in_copy < len(written)  # taken while the writer went on
    assert events == in_copy  # no account without its event: one snapshot, not a torn copy


def test_restore_refuses_a_database_in_use_and_revives_no_link_used_after_the_backup(scratch_url, tmp_path):
    app = fresh(scratch_url)
    used_later = issue_link(app, make_wizard_account(app, 1))
    unused = issue_link(app, make_wizard_account(app, 2))
    result = cli(app, "backup", str(tmp_path), "--keep", "3")
    assert result.exit_code == 0, result.output
    copy = re.search(r"Backup written to (\S+)\.$", result.output.strip()).group(1)

    assert activate(app, used_later) == 200  # after the backup: the link is used, the account activated

    refused = cli(app, "restore", copy)
    assert refused.exit_code == 1
    assert "restore with --replace" in refused.output
    restored = cli(app, "restore", copy, "--replace")
    assert restored.exit_code == 0, restored.output
    assert "The links of 2 accounts no longer work" in restored.output

    app = create_app(make_config(scratch_url))  # the service starts again on the restored database
    assert app.test_client().get("/readyz").status_code == 200
    assert activate(app, used_later) == 410  # the backup remembers it unused: the restore cancelled it
    assert activate(app, unused) == 410
    with app.app_context():
        assert {account.status for account in db.session.scalars(select(Account))} == {Status.CREATED}
    admin = Client(app)
    assert admin.login("alice", PASSWORD).status_code == 302
    dashboard = admin.get("/").get_data(as_text=True)
    assert "restored from a backup" in dashboard and "no longer works" in dashboard


def test_backup_keeps_the_newest_and_restore_refuses_what_is_no_backup(scratch_url, tmp_path):
    app = fresh(scratch_url)
    kept = tmp_path / "kept"
    kept.mkdir()
    suffix = ".db" if scratch_url.startswith("sqlite") else ".dump"
    for n in range(4):
        (kept / f"provisio-20260101-00000{n}{suffix}").write_bytes(b"old")
    assert cli(app, "backup", str(kept), "--keep", "2").exit_code == 0
    assert len(list(kept.iterdir())) == 2
    assert not (kept / f"provisio-20260101-000002{suffix}").exists()

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database")
    refused = cli(app, "restore", str(junk), "--replace")
    assert refused.exit_code == 1
    assert "junk.db" in refused.output and "Traceback" not in refused.output
    missing = cli(app, "restore", str(tmp_path / "nothing-here"), "--replace")
    assert missing.exit_code == 1 and "No backup at" in missing.output
    with app.app_context():
        assert staff.find("alice") is not None  # nothing was lost on the way
