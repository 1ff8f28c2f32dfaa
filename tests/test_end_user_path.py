"""The end user's path, end to end: e-mail through a real SMTP server, the landing page,
Install, Activate and the activation file."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from extensions import db
from models import Account, AuditEvent, Device, Message, MessageStatus, Status
from services import accounts
from tests.webtools import issue_link, run_worker

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "activation-file.schema.json").read_text())
LINK = re.compile(r"https://activate\.example\.test/m/([A-Za-z0-9_.\-]+)")


def page_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_whole_lifecycle_from_email_to_activated(app, csr, mail_settings, group):
    # The CSR creates a wizard account and sends the secure link by e-mail in one step.
    response = csr.post("/accounts/wizard", {
        "account_type": "pgsm", "username": "55501234", "callerid": "+41795550000", "group_id": group,
        "profile_id": 0, "security_model": "end-to-end", "obfuscation": "y", "obfuscation_key": "9",
        "owner": "Anna Meier", "email": "anna@example.com", "send_now": "email",
    }, follow_redirects=True)
    assert "queued" in response.get_data(as_text=True)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "55501234"))
        assert account.status is Status.CREATED  # queued is not sent
        account_id = account.id

    run_worker(app)

    assert len(mail_settings.inbox.messages) == 1
    mail = mail_settings.inbox.messages[0]
    assert mail["To"] == "anna@example.com"
    body = mail.get_content()
    token = LINK.search(body).group(1)
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account.status_label == "Installation e-mail sent"
        assert accounts.sip_password(account) not in body
        message = db.session.scalar(select(Message).where(Message.account_id == account_id))
        assert message.status is MessageStatus.SENT and message.attempts == 1

    phone = app.test_client()
    landing = phone.get(f"/m/{token}", headers={"User-Agent": IPHONE})
    assert landing.status_code == 200
    html = landing.get_data(as_text=True)
    assert "iPhone" in html and "Anna" in html
    csrf = page_token(html)

    install = phone.post(f"/m/{token}/install", data={"csrf_token": csrf, "platform": "ios"},
                         headers={"User-Agent": IPHONE})
    assert install.status_code == 303
    assert install.headers["Location"] == "https://apps.example.test/ios-e2e"
    with app.app_context():
        assert db.session.get(Account, account_id).status is Status.INSTALLED

    activate = phone.post(f"/m/{token}/activate", data={"csrf_token": csrf, "platform": "ios"},
                          headers={"User-Agent": IPHONE})
    assert activate.status_code == 200
    assert activate.mimetype == "application/x-provisio-activation"
    assert activate.headers["Content-Disposition"].startswith("attachment;")
    assert "no-store" in activate.headers["Cache-Control"]
    assert activate.headers["X-Content-Type-Options"] == "nosniff"
    document = activate.get_json(force=True)
    jsonschema.validate(document, SCHEMA)
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert document["account"]["password"] == accounts.sip_password(account)
        assert document["account"]["id"] == account.uid
        assert document["servers"]["sip"]["host"] == "sip.example.net"
        assert account.status is Status.ACTIVATED and account.enabled is True
        device = db.session.scalar(select(Device).where(Device.account_id == account_id))
        assert device.platform.value == "ios" and device.user_agent == IPHONE
        assert [event.status for event in reversed(account.status_events)] == [
            Status.CREATED, Status.INSTALLATION_SENT, Status.INSTALLED, Status.ACTIVATED]

    again = phone.post(f"/m/{token}/activate", data={"csrf_token": csrf, "platform": "ios"})
    assert again.status_code == 410
    assert "ask your operator" in again.get_data(as_text=True)
    assert "password" not in again.get_data(as_text=True)
    with app.app_context():
        refused = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.refused")).all()
        assert len(refused) == 1


@pytest.mark.parametrize("user_agent", [
    IPHONE, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (compatible; Microsoft Office SafeLinks)", "curl/8.4.0",
])
def test_landing_get_and_head_change_nothing(app, csr, mail_settings, make_account, user_agent):
    account_id = make_account(wizard=True, email="anna@example.com")
    token = issue_link(app, account_id)
    with app.app_context():
        account = db.session.get(Account, account_id)
        before = (account.status, account.link_version, account.enabled)
        audit_count = db.session.query(AuditEvent).count()
    client = app.test_client()
    assert client.get(f"/m/{token}", headers={"User-Agent": user_agent}).status_code == 200
    assert client.head(f"/m/{token}", headers={"User-Agent": user_agent}).status_code == 200
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert (account.status, account.link_version, account.enabled) == before
        assert db.session.query(AuditEvent).count() == audit_count


def test_messages_page_and_dashboard_show_todays_sent_and_failed(app, csr, mail_settings, make_account):
    sent_to = make_account(wizard=True, email="anna@example.com")
    refused = make_account(wizard=True, email="nobody@example.com")
    mail_settings.inbox.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    for account_id in (sent_to, refused):
        csr.post(f"/accounts/{account_id}/send", {"kind": "link", "channel": "email",
                                                   "idempotency_key": f"{account_id:032x}"})
    run_worker(app)

    page = csr.get("/messages").get_data(as_text=True)
    assert "550 5.1.1 No such user" in page and "sent" in page
    failed_only = csr.get("/messages?status=failed").get_data(as_text=True)
    assert "nobody@example.com" in failed_only and "anna@example.com" not in failed_only
    dashboard = csr.get("/").get_data(as_text=True)
    assert re.search(r"<strong>1</strong> sent", dashboard)
    assert re.search(r'<strong class="field__error">1</strong> failed', dashboard)
    assert csr.get("/messages?day=not-a-date").status_code == 200
