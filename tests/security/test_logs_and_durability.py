"""Logs without secrets, audit rows that say who and from where, deliveries that end, and a SQLite
file that a DBA's stock tools call healthy (issue 13, section 7)."""

import http.client
import logging
import os
import re
import secrets
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, update

from app import create_app
from extensions import db
from models import AuditEvent, Message, MessageStatus, utcnow
from services import settings
from tests.deploy.shipped import nginx_binary, nginx_command, nginx_main, nginx_site, self_signed
from tests.mail import free_port
from tests.support import make_config
from tests.webtools import page_text, run_worker, sign_in, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
# Shaped like the real thing, and unique, so a hit in a log cannot be a coincidence.
TOKEN = "eyJsaW5rIjoxfQ." + secrets.token_urlsafe(24)
RECEIPT_SECRET = secrets.token_hex(16)


def stop(process: subprocess.Popen) -> None:
    """Stop a server this test started, by its PID, and wait for it to flush its logs."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# -- 1. gunicorn as deploy/provisio-web.service starts it -------------------------------------------

def unit_command(port: int) -> list[str]:
    """ExecStart of deploy/provisio-web.service, run from this checkout, bound to a free loopback port."""
    unit = (ROOT / "deploy" / "provisio-web.service").read_text().replace("\\\n", " ")
    args = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))
    assert args[0] == "/opt/provisio/.venv/bin/gunicorn"
    args = [sys.executable, "-m", "gunicorn", *(arg.replace("/opt/provisio", str(ROOT)) for arg in args[1:])]
    bind = args.index("--bind")
    args[bind + 1] = f"127.0.0.1:{port}"
    return args


@pytest.fixture(scope="module")
def gunicorn_logs(tmp_path_factory) -> dict[str, str]:
    """Run the unit's gunicorn (plus an access log) over a database it cannot read, so the link
    page fails with a logged bug; send a link, a failing link, a receipt and a malformed request."""
    directory = tmp_path_factory.mktemp("gunicorn")
    access_log, error_log = directory / "access.log", directory / "error.log"
    port = free_port()
    env = {**os.environ, "PROVISIO_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
           "PROVISIO_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "PROXY_COUNT": "1",
           "PUBLIC_BASE_URL": "https://activate.example.test",
           "DATABASE_URL": f"sqlite:///{directory / 'never-migrated.db'}"}  # every query fails: a 500
    with open(error_log, "wb") as stderr:
        process = subprocess.Popen([*unit_command(port), "--access-logfile", str(access_log)], cwd=ROOT,
                                   env=env, stdout=stderr, stderr=stderr)
    try:
        wait_for_port(port, process, "gunicorn")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for method, path in [("GET", f"/m/{TOKEN}"), ("POST", f"/m/{TOKEN}/activate"),
                             ("GET", f"/m/{TOKEN}/activation"), ("GET", f"/snom/first/{TOKEN}.xml"),
                             ("POST", f"/hooks/receipts/vonage/{RECEIPT_SECRET}")]:
            connection.request(method, path, headers={"X-Forwarded-For": "198.51.100.7"})
            connection.getresponse().read()
        connection.request("GET", "/static/css/mobile.css",
                           headers={"Referer": f"https://activate.example.test/m/{TOKEN}"})
        connection.getresponse().read()
        connection.close()
        # gunicorn itself quotes a request line it cannot parse in its error log
        raw_request(port, f"GET /m/{TOKEN}\x01 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    finally:
        stop(process)
    return {"access": access_log.read_text(), "error": error_log.read_text()}


def test_gunicorn_access_log_masks_link_tokens_and_receipt_secrets(gunicorn_logs):
    log = gunicorn_logs["access"]
    assert "GET /m/[masked] HTTP/1.1" in log
    assert "POST /m/[masked]/activate HTTP/1.1" in log
    assert "GET /snom/first/[masked].xml HTTP/1.1" in log
    assert "POST /hooks/receipts/vonage/[masked] HTTP/1.1" in log
    assert '"https://activate.example.test/m/[masked]"' in log  # the Referer of the page's stylesheet
    assert TOKEN not in log and RECEIPT_SECRET not in log


def test_gunicorn_error_log_masks_the_link_token_of_a_failed_request(gunicorn_logs):
    log = gunicorn_logs["error"]
    assert "unhandled OperationalError on GET /m/[masked]" in log  # the app's own report of the bug
    assert "Invalid request from ip=127.0.0.1: Invalid HTTP request line: 'GET /m/[masked] HTTP/1.1'" in log
    assert TOKEN not in log and RECEIPT_SECRET not in log


def test_a_bug_on_a_link_page_is_logged_without_the_token(app, monkeypatch, caplog):
    def broken():
        raise RuntimeError(f"lost while reading /m/{TOKEN}")

    monkeypatch.setattr(settings, "get_all", broken)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().post(f"/m/{TOKEN}/activate")
    assert response.status_code == 500 and TOKEN not in page_text(response)
    logged = "\n".join(caplog.text.splitlines())
    assert "unhandled RuntimeError on POST /m/[masked]/activate" in logged
    assert "lost while reading /m/[masked]" in logged  # the traceback too
    assert TOKEN not in logged


# -- 1. nginx as deploy/nginx.conf configures it ----------------------------------------------------

@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """The shipped nginx.conf on free loopback ports, in front of a stand-in upstream; nginx is a child
    of the test (missing nginx fails in CI and skips elsewhere, like Chromium)."""
    binary = nginx_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; .ci/run installs the nginx-light package")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    directory = tmp_path_factory.mktemp("nginx")
    cert, key = self_signed(directory)
    tls, plain, upstream = free_port(), free_port(), free_port()
    site = directory / "site.conf"
    site.write_text(nginx_site(tls=tls, plain=plain, upstreams=(upstream,), cert=cert, key=key,
                               access_log=directory / "access.log"))
    (directory / "nginx.conf").write_text(nginx_main(directory, site))
    stand_in = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(upstream)],
                                cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen(nginx_command(binary, directory, directory / "nginx.conf"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(upstream, stand_in, "the stand-in upstream")
        wait_for_port(tls, server, "nginx")
        yield {"tls": tls, "plain": plain, "log": directory / "access.log"}
    finally:
        stop(server)
        stop(stand_in)


def https(port: int) -> http.client.HTTPSConnection:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the test's own certificate
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)


def fetch(connection, method: str, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    connection.request(method, path, headers={"Host": "activate.example.com", **(headers or {})})
    response = connection.getresponse()
    response.read()
    return response


def written(path: Path, lines: int) -> str:
    """The log once it has `lines` lines: nginx writes a line after the response has left."""
    deadline = time.monotonic() + 10
    while (text := path.read_text()).count("\n") < lines and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def test_nginx_access_log_masks_link_tokens_and_receipt_secrets(nginx):
    connection = https(nginx["tls"])
    for method, path in [("GET", f"/m/{TOKEN}"), ("POST", f"/m/{TOKEN}/activate?x=1"),
                         ("GET", f"/snom/first/{TOKEN}.xml"),
                         ("POST", f"/hooks/receipts/clickatell/{RECEIPT_SECRET}")]:
        fetch(connection, method, path)
    fetch(connection, "GET", "/static/css/mobile.css", {"Referer": f"https://activate.example.com/m/{TOKEN}"})
    plain = http.client.HTTPConnection("127.0.0.1", nginx["plain"], timeout=10)
    fetch(plain, "GET", f"/m/{TOKEN}")  # → https
    log = written(nginx["log"], lines=6)
    assert log.count("GET /m/[masked] HTTP/1.1") == 2
    assert "POST /m/[masked]/activate?x=1 HTTP/1.1" in log
    assert "GET /snom/first/[masked].xml HTTP/1.1" in log
    assert "POST /hooks/receipts/clickatell/[masked] HTTP/1.1" in log
    assert '"https://activate.example.com/m/[masked]"' in log
    assert TOKEN not in log and RECEIPT_SECRET not in log


def test_nginx_keeps_metrics_to_this_machine_and_logs_each_requests_id(nginx):
    connection = https(nginx["tls"])
    connection.request("GET", "/metrics", headers={"Host": "activate.example.com"})
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 404
    assert "<center>nginx</center>" in body  # nginx's own answer: the request never reached the app
    lines_before = nginx["log"].read_text().count("\n")  # the module's other requests share the log
    fetch(https(nginx["tls"]), "GET", "/healthz")
    log = written(nginx["log"], lines=lines_before + 1)
    assert re.search(r'"GET /metrics HTTP/1.1" 404 .* id=[0-9a-f]{32}$', log, re.M)


def test_nginx_does_not_say_its_version(nginx):
    response = fetch(https(nginx["tls"]), "GET", "/static/css/mobile.css")
    assert response.getheader("Server") == "nginx"


def test_nginx_serves_static_files_with_nosniff(nginx):
    response = fetch(https(nginx["tls"]), "GET", "/static/js/mobile.js")
    assert response.status == 200
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "same-origin"


# -- 2. audit rows: the client's address (trusted hop) and the outcome --------------------------------

def proxied_app(database_url: str, proxy_count: int):
    return create_app({**make_config(database_url), "PROXY_COUNT": proxy_count})


def disable_as_carl(app, account_id: int, forwarded_for: str) -> AuditEvent:
    browser = sign_in(app, "carl")
    response = browser.post(f"/accounts/{account_id}/disable", headers={"X-Forwarded-For": forwarded_for})
    assert response.status_code == 302
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == "account.disable")).one()


def test_a_csrs_action_behind_the_proxy_records_the_forwarded_client_address(
        app, database_url, csr_id, make_account):
    account_id = make_account()
    event = disable_as_carl(proxied_app(database_url, 1), account_id, "203.0.113.9")
    assert (event.actor, event.ip, event.outcome) == ("carl", "203.0.113.9", "ok")


def test_a_forged_forwarded_for_is_not_believed_without_a_trusted_proxy(
    app, database_url, csr_id, make_account
):
    account_id = make_account()
    event = disable_as_carl(proxied_app(database_url, 0), account_id, "203.0.113.9")
    assert event.ip == "127.0.0.1"  # the test client's own address, the only hop there is


def test_audit_page_shows_the_outcome_and_utc_times_with_their_offset(app, admin, make_account):
    make_account()
    with app.app_context():
        db.session.add(AuditEvent(actor="mallory", action="auth.login_failed", ip="192.0.2.1",
                                  outcome="throttled"))
        db.session.commit()
    page = page_text(admin.get("/admin/audit?outcome=throttled"))
    assert '<td class="mono">auth.login_failed</td>' in page and '<td class="mono">throttled</td>' in page
    assert '<td class="mono">account.create</td>' not in page  # the outcome filters the rows
    assert re.search(r">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00</time>", page)


# -- 3. a delivery that raises counts as an attempt and ends ----------------------------------------

def test_a_delivery_whose_gateway_secret_cannot_be_decrypted_fails_after_the_maximum_with_the_reason(
        app, csr, mail_settings, make_account):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    lost_key = Fernet(Fernet.generate_key())  # the secret was saved under a key since removed
    with app.app_context():
        mail = dict(settings.get("mail"), username="relay",
                    password_encrypted=lost_key.encrypt(b"pw-9").decode())
        settings.save({"mail": mail}, actor="test")
    account_id = make_account(wizard=True)
    assert csr.post(f"/accounts/{account_id}/send",
                    {"kind": "link", "channel": "email",
                     "idempotency_key": secrets.token_hex(16)}).status_code == 302
    for _ in range(5):
        run_worker(app)  # the real worker loop: flask worker --once
        with app.app_context():
            db.session.execute(update(Message).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
    with app.app_context():
        message = db.session.scalars(select(Message)).one()
        assert (message.status, message.attempts, message.lease_until) == (MessageStatus.FAILED, 3, None)
        assert "cannot be decrypted" in message.last_error and "pw-9" not in message.last_error
    assert "cannot be decrypted with the configured keys" in page_text(csr.get("/messages?status=failed"))
    assert mail_settings.inbox.messages == []


def test_a_message_whose_worker_died_on_every_attempt_fails_instead_of_being_sent_again(
        app, csr, mail_settings, make_account):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    account_id = make_account(wizard=True)
    assert csr.post(f"/accounts/{account_id}/send",
                    {"kind": "link", "channel": "email",
                     "idempotency_key": secrets.token_hex(16)}).status_code == 302
    with app.app_context():  # three claims whose workers were killed before recording anything
        db.session.execute(update(Message).values(attempts=3, lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    run_worker(app)
    with app.app_context():
        message = db.session.scalars(select(Message)).one()
        assert message.status is MessageStatus.FAILED and "Gave up after 3 attempts" in message.last_error
    assert mail_settings.inbox.messages == []


# -- 5. SQLite: the stock integrity_check -------------------------------------------------------------

def test_stock_sqlite_integrity_check_says_ok_after_non_ascii_accounts(app, make_account):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("a SQLite file only")
    make_account(username="ANNIcode", email="Ärger.Ölmann@Bücher.example", owner="Ünal Çelik")
    make_account(username="strasse", email="SØREN@example.dk", owner="Straße Ölmann")
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:  # as the sqlite3 tool opens it: SQLite's own lower()
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_no_sqlite_index_depends_on_a_sql_function(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("a SQLite file only")
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:  # the app's lower() differs from the stock tool's
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        assert [name for name, sql in indexes if "(" in sql.split(" ON ", 1)[1].split("(", 1)[1]] == []


def test_the_sqlite_settings_are_made_on_the_apps_own_connections_only(app, tmp_path):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("a SQLite file only")
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")  # another engine of the same process
    try:
        with other.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    finally:
        other.dispose()
