"""Cross-cutting security: CSRF on every POST, read-only GETs, headers, errors, secrets, start-up."""

import itertools
import json
import logging
import os
import stat

import pytest
from flask import Flask
from sqlalchemy import event, select
from werkzeug.routing import AnyConverter

import headers
from app import create_app
from extensions import db
from models import Account, Channel, MessageKind, Profile, Role
from services import bulk, groups, imports, links, messaging, staff
from tests.support import KEY, PASSWORD, Client, make_config
from tests.webtools import page_text

NEW_PASSWORD = "a brand new passphrase 42"
SIP_PASSWORD = "Sip-Secret-Zebra-4711"
ACCOUNT_FORM = {
    "account_type": "pgsm", "username": "walk0001", "password": SIP_PASSWORD,
    "password_repeat": SIP_PASSWORD, "callerid": "+41791230999", "secondary_callerid": "",
    "owner": "Walker", "email": "walker@example.com", "description": "", "profile_id": "0",
    "security_model": "end-to-end", "obfuscation": "y", "obfuscation_key": "9", "deny": "",
    "permit": "", "licence_expires_on": "",
}
# What a real form would send to each endpoint, so only the missing token can stop it.
PAYLOADS = {
    "auth.login": {"username": "alice", "password": PASSWORD},
    "auth.password": {"current": PASSWORD, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    "console.account_new": ACCOUNT_FORM,
    "console.account_wizard": ACCOUNT_FORM,
    "console.account_edit": ACCOUNT_FORM,
    "admin.group_edit": {"name": "Walked", "description": "", "profile_id": "0"},
    "admin.profile_edit": {"name": "Walked", "description": "", "sip_host": "sip.example.org",
                           "provisioning_host": "prov.example.org", "transport": "tls",
                           "refetch_hours": "24", "options": "{}"},
    "admin.staff_edit": {"username": "walker", "full_name": "W", "role": "admin", "active": "y",
                         "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
}
CSP_KEYWORDS = {"'self'", "'none'", "data:"}


# Device protocols (SPEC §4): bearer credentials, never cookies, so CSRF does not apply; Snom
# phones can only GET, and their first fetch binds the MAC. Providers' receipt callbacks carry a
# secret in the URL. What each answers when the console session is all a request has:
DEVICE_BLUEPRINTS = {"api": 401, "snom": 401, "hooks": 404}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def real_ids(app, make_account, group, other_group, admin_id, csr_id) -> dict[str, int | str]:
    """Values of real objects for every URL parameter: an account, a message it was sent, a bulk job,
    a CSV import and a live secure link to it, a desk phone's MAC, an empty group and an unused
    profile (so deletes would succeed), a staff user other than the admin."""
    account_id = make_account()
    make_account(account_type="snom", mac_address="000413922D24", security_model=None,
                 obfuscation=False, obfuscation_key="")
    with app.app_context():
        spare = Profile(name="Spare", sip_host="sip.example.org", provisioning_host="prov.example.org")
        db.session.add(spare)
        db.session.commit()
        account = db.session.get(Account, account_id)
        message = messaging.queue(account, MessageKind.LINK, Channel.EMAIL, actor=staff.get(admin_id))
        token = links.token_of(message)
        job = bulk.start(staff.get(admin_id), "enable", [account_id], key="3a1c0000000000000000000000000001",
                         scope={})
        upload = imports.start(b"callerid,owner\n+41791230998,Walker\n", filename="walk.csv",
                               default_group_id=group, actor=staff.get(admin_id))
        values = {"account_id": account_id, "message_id": message.id, "group_id": other_group,
                  "profile_id": spare.id, "staff_id": csr_id, "token": token,
                  "username": account.username, "mac": "000413922D24", "job_id": job.id,
                  "import_id": upload.id}
    return values


def rule_urls(rule, ids: dict[str, int | str]) -> list[str]:
    """Every URL a rule builds with real ids, one per choice of an any() converter."""
    names = sorted(rule.arguments - set(rule.defaults or {}))
    choices = []
    for name in names:
        converter = rule._converters[name]
        if isinstance(converter, AnyConverter):
            choices.append(sorted(converter.items))
        else:
            assert name in ids, f"{rule.rule}: give real_ids a real value for <{name}>"
            choices.append([ids[name]])
    return [rule.build(dict(zip(names, combo, strict=True)), append_unknown=False)[1]
            for combo in itertools.product(*choices)]


def rules_with(app: Flask, methods: set[str], *, devices: bool) -> list:
    """The rules answering any of `methods`: the device protocols' or the browsers' ones."""
    return [rule for rule in app.url_map.iter_rules()
            if rule.methods & methods and rule.endpoint != "static"
            and (rule.endpoint.split(".")[0] in DEVICE_BLUEPRINTS) is devices]


def snapshot(app: Flask) -> dict[str, list[str]]:
    """Every row of every table, to compare before and after a request."""
    with app.app_context(), db.engine.connect() as connection:
        return {table.name: sorted(map(repr, connection.execute(select(table)).all()))
                for table in db.metadata.sorted_tables}


def test_every_post_without_csrf_token_is_refused_and_changes_nothing(app, admin, real_ids):
    urls = [(rule.endpoint, method, url)
            for rule in rules_with(app, UNSAFE_METHODS, devices=False)
            for method in sorted(rule.methods & UNSAFE_METHODS) for url in rule_urls(rule, real_ids)]
    assert len(urls) >= 20
    before = snapshot(app)

    for endpoint, method, url in urls:
        response = admin.http.open(url, method=method, data=PAYLOADS.get(endpoint, {}))

        assert response.status_code == 400, url
        assert "Form expired" in page_text(response), url
        assert snapshot(app) == before, url
    assert admin.get("/").status_code == 200  # still signed in: sign-out was refused too


def test_csrf_exempt_device_api_ignores_the_console_session(app, admin, real_ids):
    urls = [(rule.endpoint, method, url) for rule in rules_with(app, UNSAFE_METHODS, devices=True)
            for method in sorted(rule.methods & UNSAFE_METHODS) for url in rule_urls(rule, real_ids)]
    assert {endpoint.split(".")[0] for endpoint, _, _ in urls} == {"api", "hooks"}
    before = snapshot(app)

    for endpoint, method, url in urls:
        response = admin.http.open(url, method=method, json={})

        assert response.status_code == DEVICE_BLUEPRINTS[endpoint.split(".")[0]], url
        assert snapshot(app) == before, url


def test_a_wrong_csrf_token_is_refused_too(app, admin, real_ids):
    before = snapshot(app)

    response = admin.post(f"/accounts/{real_ids['account_id']}/disable", {"csrf_token": "forged"})

    assert response.status_code == 400
    assert snapshot(app) == before


def test_no_get_or_head_request_writes_to_the_database(app, admin, real_ids):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for rule in rules_with(app, {"GET", "HEAD"}, devices=False):
            for url in rule_urls(rule, real_ids):
                for method in ("GET", "HEAD"):
                    response = admin.http.open(url, method=method)
                    assert response.status_code < 500, f"{method} {url}"
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert statements, "the listener saw no statement at all"
    writes = [s for s in statements if s.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []


def test_every_console_and_admin_page_answers_200_for_the_admin(app, admin, real_ids, tmp_path):
    app.config["CAUGHT_MAIL_DIR"] = str(tmp_path)  # the development page too
    for rule in rules_with(app, {"GET"}, devices=False):
        if rule.endpoint.split(".")[0] not in ("console", "admin"):
            continue
        for url in rule_urls(rule, real_ids):
            assert admin.get(url).status_code == 200, url


@pytest.mark.parametrize("url", ["/auth/login", "/", "/no/such/page"])
def test_security_headers_are_on_every_response(admin, url):
    headers = admin.get(url).headers

    directives = dict(part.strip().split(None, 1) for part in headers["Content-Security-Policy"].split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"
    sources = {source for value in directives.values() for source in value.split()}
    assert sources <= CSP_KEYWORDS, f"third-party or unsafe sources: {sources - CSP_KEYWORDS}"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in {"same-origin", "no-referrer", "strict-origin-when-cross-origin"}
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("url", ["/m/not-a-real-token", "/m/not-a-real-token/activation", "/m/a/b/c"])
def test_every_answer_under_a_link_is_kept_from_caches_and_referers(client, url):
    """A link's own pages and its error pages (410, 400, 404) carry the token in their URL."""
    response = client.get(url)
    assert response.status_code in (400, 404, 410)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]


def test_a_staff_page_keeps_its_own_referrer_policy(client):
    response = client.get("/auth/login")
    assert response.headers.getlist("Referrer-Policy") == ["same-origin"]


def test_secure_deployment_sends_hsts_and_locked_down_cookies(database_url, admin_id):
    secure_app = create_app({**make_config(database_url), "SESSION_COOKIE_SECURE": True,
                             "REMEMBER_COOKIE_SECURE": True})
    try:
        browser = Client(secure_app)
        response = browser.http.get("/auth/login", base_url="https://localhost")

        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
    finally:
        with secure_app.app_context():
            db.engine.dispose()


def test_unknown_account_answers_a_404_page(admin):
    response = admin.get("/accounts/987654")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Not Found" in page_text(response)


@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/"), ("GET", "/api/v1/no-such-thing"), ("GET", "/api/accounts/1"),
    ("POST", "/api/v1/activate"),
])
def test_unknown_api_urls_answer_json_404(client, method, url):
    response = client.http.open(url, method=method)

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"] == "not_found"
    assert response.get_json()["message"]


def test_sip_and_staff_passwords_never_reach_the_logs(app, admin, group, caplog):
    caplog.set_level(logging.DEBUG)
    # alembic.ini quietens SQLAlchemy; open it fully so statements and parameters are seen.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")

    created = admin.post("/accounts/new", {**ACCOUNT_FORM, "group_id": str(group)})
    Client(app).login("alice", PASSWORD)
    Client(app).login("alice", "wrong " + PASSWORD)

    assert created.status_code == 302
    assert caplog.records, "nothing was logged at all; the check would prove nothing"
    logged = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert SIP_PASSWORD not in logged
    assert PASSWORD not in logged


def test_sip_and_staff_passwords_appear_on_no_page(app, admin, group, real_ids):
    admin.post("/accounts/new", {**ACCOUNT_FORM, "group_id": str(group)})
    refused = admin.post("/accounts/new", {**ACCOUNT_FORM, "group_id": str(group)})  # duplicate
    failed_login = Client(app).login("alice", "wrong " + PASSWORD)
    pages = [refused, failed_login]
    for rule in rules_with(app, {"GET"}, devices=False):
        pages += [admin.get(url) for url in rule_urls(rule, real_ids)]

    assert refused.status_code == 200
    for response in pages:
        assert SIP_PASSWORD not in page_text(response), response.request.path
        assert PASSWORD not in page_text(response), response.request.path


def test_a_server_error_page_shows_no_request_data(app, admin, monkeypatch):
    def explode():
        raise RuntimeError(f"boom {PASSWORD}")

    monkeypatch.setattr(groups, "list_groups", explode)

    response = admin.get("/admin/groups")

    assert response.status_code == 500
    assert PASSWORD not in page_text(response)
    assert "boom" not in page_text(response)


@pytest.fixture
def empty_instance(tmp_path, monkeypatch):
    """Point every new app's instance folder at an empty temporary directory."""
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return tmp_path


STRONG_KEY = "kQ7vN2xR9pLm4tW8zYc3bF6hJ1sD5gAe0uVyXiOq"  # 40 random characters: passes the key rule
PRODUCTION = {"PROVISIO_ENV": "production", "SQLALCHEMY_DATABASE_URI": "sqlite://",
              "SECRET_KEY": STRONG_KEY, "ENCRYPTION_KEYS": [KEY]}


def test_production_starts_with_its_secrets_and_debug_off(empty_instance):
    app = create_app(PRODUCTION)

    assert app.config["SECRET_KEY"] == STRONG_KEY
    assert not os.path.exists(empty_instance / "secrets.json")


@pytest.mark.parametrize(("missing", "named"), [
    ({"SECRET_KEY": None}, "SECRET_KEY"),
    ({"ENCRYPTION_KEYS": []}, "ENCRYPTION_KEYS"),
    ({"SECRET_KEY": "", "ENCRYPTION_KEYS": []}, "SECRET_KEY, ENCRYPTION_KEYS"),
])
def test_production_refuses_to_start_without_secrets(empty_instance, missing, named):
    with pytest.raises(RuntimeError, match=f"Refusing to start without {named}"):
        create_app({**PRODUCTION, **missing})

    assert not os.path.exists(empty_instance / "secrets.json")  # and invents none


def test_production_refuses_to_start_with_debug_in_config(empty_instance):
    with pytest.raises(RuntimeError, match="DEBUG"):
        create_app({**PRODUCTION, "DEBUG": True})


def test_production_refuses_to_start_with_flask_debug_in_the_environment(empty_instance, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")

    with pytest.raises(RuntimeError, match="DEBUG"):
        create_app(PRODUCTION)


DEVELOPMENT = {"PROVISIO_ENV": "development", "SECRET_KEY": None, "ENCRYPTION_KEYS": [],
               "PASSWORD_HASH_PROFILE": "CHEAPEST"}


def test_development_without_secrets_writes_nothing_and_every_page_says_to_run_setup(empty_instance):
    app = create_app({**DEVELOPMENT, "SQLALCHEMY_DATABASE_URI": "sqlite://"})

    assert list(empty_instance.iterdir()) == []  # the factory reads, never writes
    response = app.test_client().get("/auth/login")
    assert response.status_code == 503
    assert "run `make setup` (or `flask --app app setup`)" in response.get_data(as_text=True)
    worker = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert worker.exit_code != 0 and "No such command 'worker'" in worker.output


def test_setup_writes_owner_only_secrets_that_every_later_start_reads(empty_instance):
    database = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{empty_instance / 'provisio.db'}"}
    first = create_app({**DEVELOPMENT, **database})

    result = first.test_cli_runner().invoke(args=["setup"])

    assert result.exit_code == 0, result.output
    assert "password: " in result.output
    path = empty_instance / "secrets.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = json.loads(path.read_text())
    app = create_app({**DEVELOPMENT, **database})
    assert app.config["SECRET_KEY"] == stored["SECRET_KEY"]
    assert app.config["ENCRYPTION_KEYS"] == stored["ENCRYPTION_KEYS"]
    assert app.test_client().get("/auth/login").status_code == 200
    again = app.test_cli_runner().invoke(args=["setup"])
    assert again.exit_code == 0, again.output
    assert json.loads(path.read_text()) == stored  # written once
    for started in (first, app):
        with started.app_context():
            db.engine.dispose()


def test_setup_under_a_world_readable_umask_makes_a_database_only_its_user_reads(empty_instance, tmp_path):
    """An operator's shell (umask 022) runs `flask setup`: the database and its journal stay 0600."""
    folder = tmp_path / "elsewhere"  # DATABASE_URL may point outside the instance folder
    folder.mkdir()
    app = create_app({**PRODUCTION, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'provisio.db'}"})
    previous = os.umask(0o022)
    try:
        result = app.test_cli_runner().invoke(args=["setup"])
        with app.app_context():  # a write while the file is open: its -wal and -shm files exist now
            staff.create(username="second", password=PASSWORD, role=Role.CSR, group_ids=[], actor="test")
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
            db.engine.dispose()
    finally:
        os.umask(previous)

    assert result.exit_code == 0, result.output
    assert modes == {"provisio.db": 0o600, "provisio.db-wal": 0o600, "provisio.db-shm": 0o600}


@pytest.mark.parametrize(("url", "added"), [
    ("https://apps.apple.com/app/id123?x=1", "https://apps.apple.com"),
    ("http://127.0.0.1:8081/store", "http://127.0.0.1:8081"),
    ("https://[2001:db8::1]:8443/a", "https://[2001:db8::1]:8443"),
    ("HTTPS://Play.Google.COM/store", "https://play.google.com"),
    ("https://evil.test;script-src *", None),  # would end the directive and open scripts
    ("https://evil.test 'unsafe-inline'/", None),
    ("javascript://x/%0aalert(1)", None),
    ("https://x.test:99999/", None),
])
def test_the_landing_policy_lets_forms_reach_a_store_and_nothing_an_address_could_smuggle_in(url, added):
    policy = headers.csp_with_form_targets((url,))

    directives = dict(part.strip().split(None, 1) for part in policy.split(";"))
    assert directives["form-action"] == " ".join(filter(None, ["'self'", added]))
    assert directives["script-src"] == "'self'"
    assert policy.count(";") == headers.CSP.count(";")
