"""Fixtures: one migrated database per run (SQLite, or PostgreSQL with TEST_DATABASE_URL),
emptied after every test; apps, signed-in clients and a few objects to work on."""

import os
import threading

import pytest
from flask_migrate import upgrade
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from config import database_url as normalise_url
from extensions import db
from models import Group, Profile, Role
from services import accounts, pace, staff
from tests.support import Client, make_config, make_staff

# CI explores the same examples on every run, so a red build is reproducible; locally they vary.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """Migrate an empty database once per run, from nothing, with the real migrations."""
    url = normalise_url(os.environ.get("TEST_DATABASE_URL")) or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )
    app = create_app(make_config(url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture
def app(database_url):
    """A fresh app over the migrated database; every row is deleted afterwards."""
    app = create_app(make_config(database_url))
    yield app
    with app.app_context():
        db.session.remove()
        tables = [table.name for table in db.metadata.sorted_tables]
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for name in reversed(tables):
                    connection.execute(text(f"DELETE FROM {name}"))
        db.engine.dispose()
    pace.forget()  # the gateways' slots went with the rows


@pytest.fixture
def live_server(app):
    """Serve the test app on a free loopback port, a thread per request, for the duration of one test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def client(app) -> Client:
    return Client(app)


@pytest.fixture
def profile(app) -> int:
    with app.app_context():
        item = Profile(name="Standard", sip_host="sip.example.net", provisioning_host="prov.example.net",
                       options={"codecs": ["opus"]})
        db.session.add(item)
        db.session.commit()
        return item.id


@pytest.fixture
def group(app, profile) -> int:
    """Group A, with a provisioning profile."""
    with app.app_context():
        item = Group(name="Group A", profile_id=profile)
        db.session.add(item)
        db.session.commit()
        return item.id


@pytest.fixture
def other_group(app) -> int:
    """Group B, without a profile."""
    with app.app_context():
        item = Group(name="Group B")
        db.session.add(item)
        db.session.commit()
        return item.id


@pytest.fixture
def admin_id(app) -> int:
    return make_staff(app, "alice", Role.ADMIN)


@pytest.fixture
def csr_id(app, group) -> int:
    return make_staff(app, "carl", Role.CSR, [group])


@pytest.fixture
def viewer_id(app, group) -> int:
    return make_staff(app, "vera", Role.VIEWER, [group])


@pytest.fixture
def admin(app, admin_id) -> Client:
    browser = Client(app)
    browser.login("alice")
    return browser


@pytest.fixture
def csr(app, csr_id) -> Client:
    browser = Client(app)
    browser.login("carl")
    return browser


@pytest.fixture
def viewer(app, viewer_id) -> Client:
    browser = Client(app)
    browser.login("vera")
    return browser


ACCOUNT_DEFAULTS = {
    "account_type": "pgsm", "password": "Sip-password-1234", "owner": "Anna Meier",
    "email": "anna@example.com", "description": "", "security_model": "end-to-end",
    "obfuscation": True, "obfuscation_key": "9", "keepalive": False, "mac_address": None,
    "deny": [], "permit": [], "profile_id": None, "secondary_callerid": None, "licence_expires_on": None,
}


@pytest.fixture
def make_account(app, admin_id, group):
    """Create accounts through the service, as the admin, with sensible defaults."""
    counter = iter(range(1, 10_000))

    def make(wizard: bool = False, **fields) -> int:
        n = next(counter)
        data = {**ACCOUNT_DEFAULTS, "username": f"user{n:04d}", "callerid": f"+4179123{n:04d}",
                "group_id": group, **fields}
        with app.app_context():
            actor = staff.get(admin_id)
            return accounts.create(data, wizard=wizard, actor=actor).id

    return make


@pytest.fixture
def ctx(app):
    """Run a block inside an app context: `with ctx(): ...`."""
    return app.app_context


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free loopback port, stopped after the test."""
    from tests.mail import SmtpServer

    with SmtpServer() as server:
        yield server


@pytest.fixture
def mail_settings(app, smtp_server, admin_id):
    """Point the e-mail gateway and the public base URL at the test's SMTP server and a public host."""
    from services import settings

    with app.app_context():
        settings.save({
            "public_base_url": "https://activate.example.test",
            "mail": {"mode": "smtp", "host": "127.0.0.1", "port": smtp_server.port, "starttls": False,
                     "username": "", "sender": "provisio@example.test"},
            "download_urls": {"ios/end-to-end": "https://apps.example.test/ios-e2e",
                              "android/end-to-end": "https://apps.example.test/android-e2e",
                              "ipados/end-to-end": "https://apps.example.test/ipad-e2e",
                              "ios/end-to-site": "https://apps.example.test/ios-e2s"},
        }, actor="test")
    return smtp_server
