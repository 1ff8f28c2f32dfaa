"""The end user's secure link, attacked: forged and guessed tokens, a copy of the database, a retired
key, hostile usernames through a real gunicorn, HEAD probes, floods of refused links, replays."""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from contextlib import contextmanager
from urllib.parse import unquote

import pytest
import requests
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select, update
from werkzeug.http import parse_options_header

from app import create_app
from extensions import db
from models import Account, AuditEvent, Device, Message, Status
from services import accounts, links
from tests.mail import free_port
from tests.support import make_config, signed_in_the_past
from tests.webtools import run_worker, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINK = re.compile(r"https://activate\.example\.test/m/([A-Za-z0-9_.\-]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
APP = {"X-Provisio-Client": "12.3.1"}
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


def sent_link(app, csr, mail_settings, account_id: int, *, hours_ago: float = 0) -> str:
    """The CSR presses Send (a link by e-mail); the worker mails it, signed `hours_ago`; return its token."""
    sent = csr.post(f"/accounts/{account_id}/send",
                    {"kind": "link", "channel": "email", "idempotency_key": uuid.uuid4().hex})
    assert sent.status_code == 302
    with signed_in_the_past(hours=hours_ago):
        run_worker(app)
    return LINK.search(mail_settings.inbox.messages[-1].get_content()).group(1)


def payload_of(token: str):
    """What a token carries, read as anyone holding it can: its payload is signed, not encrypted."""
    encoded = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def devices_of(app, account_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Device.id)).where(Device.account_id == account_id))


def refusals(app) -> list[AuditEvent]:
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.refused")
                                    .order_by(AuditEvent.id)).all()
        db.session.expunge_all()
        return events


# -- what a link carries ---------------------------------------------------------------------

def test_a_link_carries_random_bits_and_no_account_id(app, csr, mail_settings, make_account):
    account_id = make_account()
    token = sent_link(app, csr, mail_settings, account_id)

    carried = payload_of(token)
    assert isinstance(carried, str)  # one opaque value: no id, no version, no hint
    assert len(base64.urlsafe_b64decode(carried + "=" * (-len(carried) % 4))) >= 16  # >= 128 bits
    with app.app_context():
        username = db.session.get(Account, account_id).username
    assert carried != str(account_id) and username not in carried


def test_ten_thousand_links_minted_at_once_for_one_account_are_all_distinct(app, make_account):
    account_id = make_account()
    with app.app_context():
        account = db.session.get(Account, account_id)
        minted = []
        for _ in range(10_000):  # as messaging.queue mints them, for the same account and version
            message = Message(account_id=account.id, link_version=account.link_version)
            links.attach(message)
            minted.append((links.token_of(message), message.link_hash))
    assert len({token for token, _ in minted}) == 10_000
    assert len({link_hash for _, link_hash in minted}) == 10_000


def test_secret_key_alone_mints_no_working_link(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    sent_link(app, csr, mail_settings, account_id)  # the account has a live link, of version 1
    with app.app_context():
        version = db.session.get(Account, account_id).link_version
    forged = []
    for salt in ("provisio.secure-link.v1", links.SALT):  # the code is no secret: neither are its salts
        signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt)
        for v in range(version + 2):
            forged += [signer.dumps([account_id, v, hint]) for hint in ("link", "activation")]
        forged += [signer.dumps(value) for value in (str(account_id), account_id, "A" * 22, [account_id])]
    phone = app.test_client()

    for token in forged:
        assert phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 410
        assert phone.get(f"/m/{token}/activation", headers=APP).status_code in (410, 429)
    assert devices_of(app, account_id) == 0
    with app.app_context():
        assert db.session.get(Account, account_id).status is not Status.ACTIVATED


def test_the_database_keeps_only_a_hash_of_a_sent_link(app, csr, mail_settings, make_account):
    account_id = make_account()
    token = sent_link(app, csr, mail_settings, account_id)
    nonce = payload_of(token)

    with app.app_context(), db.engine.connect() as connection:
        dump = repr([tuple(row) for row in connection.execute(select(Message.__table__))])
        [message] = db.session.scalars(select(Message)).all()
        assert message.link_hash == hashlib.sha256(nonce.encode()).hexdigest()
        assert message.link_nonce_encrypted is None  # erased once the gateway took it
    assert nonce not in dump and token not in dump
    assert app.test_client().get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 200


# -- key rotation ----------------------------------------------------------------------------

@contextmanager
def app_with_keys(database_url: str, secret_key: str, fallbacks: list[str]):
    rotated = create_app({**make_config(database_url), "SECRET_KEY": secret_key,
                          "SECRET_KEY_FALLBACKS": fallbacks})
    try:
        yield rotated
    finally:
        with rotated.app_context():
            db.engine.dispose()


def test_a_retired_key_keeps_links_and_their_forms_working_until_it_is_removed(
        app, csr, database_url, mail_settings, make_account):
    old_key = app.config["SECRET_KEY"]
    account_id = make_account(wizard=True)
    token = sent_link(app, csr, mail_settings, account_id)
    page = app.test_client().get(f"/m/{token}", headers={"User-Agent": IPHONE}).get_data(as_text=True)
    form_token = CSRF.search(page).group(1)  # the page the user opened before the rotation

    with app_with_keys(database_url, "a-new-key-" + "n" * 40, [old_key]) as rotated:
        phone = rotated.test_client()
        assert phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 200
        install = phone.post(f"/m/{token}/install", data={"csrf_token": form_token, "platform": "ios"})
        assert install.status_code == 303

    with app_with_keys(database_url, "a-new-key-" + "n" * 40, []) as retired:
        phone = retired.test_client()
        assert phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 410
        activate = phone.post(f"/m/{token}/activate", data={"csrf_token": form_token, "platform": "ios"})
        assert activate.status_code == 410
    assert devices_of(app, account_id) == 0


# -- the download, through the server that refused it ----------------------------------------

@pytest.fixture
def gunicorn(app, database_url):
    """The test app under a real gunicorn (one sync worker) on a free loopback port, stopped by its PID."""
    port = free_port()
    spec = f"app:create_app({make_config(database_url)!r})"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
         "--log-level", "warning", "--bind", f"127.0.0.1:{port}", spec],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, "gunicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("username", ["ünï€ode", 'q"uote;x=.html'],
                         ids=["non-latin-1", "quote-and-semicolon"])
def test_a_hostile_username_downloads_its_file_under_an_rfc_6266_name(app, csr, mail_settings, make_account,
                                                                       gunicorn, username):
    account_id = make_account(wizard=True)
    with app.app_context():  # rows older than today's username rules, or imported around them
        db.session.execute(update(Account).where(Account.id == account_id).values(username=username))
        db.session.commit()
    token = sent_link(app, csr, mail_settings, account_id)
    phone = requests.Session()
    page = phone.get(f"{gunicorn}/m/{token}", headers={"User-Agent": IPHONE}, timeout=30)
    form_token = CSRF.search(page.text).group(1)

    answer = phone.post(f"{gunicorn}/m/{token}/activate", data={"csrf_token": form_token, "platform": "ios"},
                        headers={"User-Agent": IPHONE}, timeout=30)

    assert answer.status_code == 200
    assert answer.json()["account"]["username"] == username
    value, params = parse_options_header(answer.headers["Content-Disposition"])
    raw = answer.headers["Content-Disposition"]
    assert value == "attachment"
    assert params["filename"] == f"{username}.provisio"  # werkzeug prefers filename*, as RFC 6266 says
    assert re.search(r"filename\*=UTF-8''([^;\s]+)", raw) and unquote(
        re.search(r"filename\*=UTF-8''([^;\s]+)", raw).group(1)) == f"{username}.provisio"
    fallback = re.search(r'(?:^|;)\s*filename=("?)([^";]*)\1(?:;|$)', raw).group(2)
    assert fallback.isascii() and re.fullmatch(r"[A-Za-z0-9._-]+", fallback)
    assert set(re.findall(r";\s*([A-Za-z*]+)=", raw)) == {"filename", "filename*"}  # nothing injected
    with app.app_context():
        assert db.session.get(Account, account_id).status is Status.ACTIVATED


def test_an_answer_that_cannot_be_built_consumes_nothing(app, mail_settings, csr, make_account, monkeypatch):
    import blueprints.mobile.views as views

    account_id = make_account(wizard=True)
    token = sent_link(app, csr, mail_settings, account_id)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as production does
    real, failures = views.Response, []

    def failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise UnicodeEncodeError("latin-1", "€", 0, 1, "a header the server would refuse")
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "Response", failing_once)
    phone = app.test_client()

    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 500
    assert devices_of(app, account_id) == 0
    retry = phone.get(f"/m/{token}/activation", headers=APP)
    assert retry.status_code == 200 and retry.get_json(force=True)["account"]["password"]


# -- probes and floods -----------------------------------------------------------------------

def test_head_of_the_activation_fetch_consumes_nothing(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    token = sent_link(app, csr, mail_settings, account_id)
    phone = app.test_client()

    head = phone.head(f"/m/{token}/activation", headers=APP)

    assert head.status_code == 200 and head.data == b""
    assert "Content-Disposition" not in head.headers
    assert devices_of(app, account_id) == 0
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account.status is not Status.ACTIVATED and not account.enabled
    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 200  # the link still works


def test_a_flood_of_garbage_links_is_counted_not_written_and_answers_429(
    app, csr, mail_settings, make_account
):
    app.config.update(LINK_REFUSAL_LIMIT=3, LINK_REFUSAL_WINDOW_SECONDS=600)
    attacker = app.test_client()
    flood = {"REMOTE_ADDR": "203.0.113.66"}

    answers = [attacker.get(f"/m/garbage{n}.x.y/activation", headers=APP, environ_base=flood).status_code
               for n in range(12)]

    assert answers == [410] * 3 + [429] * 9
    [event] = refusals(app)  # one row for the whole flood: when it crossed the limit
    assert (event.outcome, event.ip) == ("throttled", "203.0.113.66")
    elsewhere = attacker.get("/m/garbage.x.y/activation", headers=APP,
                             environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert elsewhere.status_code == 410  # counted per address
    account_id = make_account(wizard=True)  # a live link still works from the throttled address (a NAT)
    token = sent_link(app, csr, mail_settings, account_id)
    assert attacker.get(f"/m/{token}/activation", headers=APP, environ_base=flood).status_code == 200


def test_a_reuse_after_success_is_audited_as_reused_naming_the_account(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    token = sent_link(app, csr, mail_settings, account_id)
    phone = app.test_client()
    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 200

    again = phone.get(f"/m/{token}/activation", headers=APP)

    assert again.status_code == 410
    with app.app_context():
        username = db.session.get(Account, account_id).username
        password = accounts.sip_password(db.session.get(Account, account_id))
    assert password not in again.get_data(as_text=True)
    [event] = refusals(app)
    assert (event.detail["reason"], event.outcome) == ("reused", "refused")
    assert (event.target_type, event.target_id, event.target) == ("account", account_id, username)
    assert token not in repr((event.detail, event.target))


def test_a_superseded_link_is_refused_naming_the_account(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    old = sent_link(app, csr, mail_settings, account_id)
    sent_link(app, csr, mail_settings, account_id)  # a resend: the old link is dead

    assert app.test_client().get(f"/m/{old}/activation", headers=APP).status_code == 410

    [event] = refusals(app)
    assert (event.detail["reason"], event.outcome, event.target_id) == ("superseded", "refused", account_id)


def test_an_expired_link_is_refused_naming_the_account(app, csr, mail_settings, make_account):
    from services import settings

    account_id = make_account(wizard=True)
    with app.app_context():
        lifetime = settings.get("link_max_age_hours")
    token = sent_link(app, csr, mail_settings, account_id, hours_ago=lifetime + 1)

    assert app.test_client().get(f"/m/{token}/activation", headers=APP).status_code == 410

    [event] = refusals(app)
    assert (event.detail["reason"], event.outcome, event.target_id) == ("expired", "refused", account_id)
