"""SMS end to end: an admin configures Vonage in Settings, a CSR sends a link by SMS, the worker delivers it
to a local server speaking Vonage's API, and the delivery receipt marks it delivered."""

import re

from sqlalchemy import select

from extensions import db
from models import Account, Message, MessageStatus
from services import receipts, settings
from tools.fake_providers import FakeVonage


def configure_vonage(admin, base_url: str):
    page = admin.get("/admin/settings").get_data(as_text=True)
    assert "SMS gateways" in page
    form = {
        "public_base_url": "https://activate.example.test", "link_max_age_hours": "72",
        "activation_mime_type": "application/x-provisio-activation", "app_uri_scheme": "provisio",
        "applications": "{}", "mail_mode": "smtp", "mail_host": "127.0.0.1", "mail_port": "25",
        "mail_sender": "provisio@example.test", "sms_gateway": "vonage", "sms_vonage_api_key": "key123",
        "sms_vonage_api_secret": "secret456", "sms_vonage_sender": "Provisio",
        "sms_vonage_base_url": base_url,
    }
    return admin.post("/admin/settings", form, follow_redirects=True)


def test_link_by_sms_through_vonage_is_sent_then_delivered_by_receipt(app, admin, make_account):
    account_id = make_account(wizard=True)
    with FakeVonage("key123", "secret456") as vonage:
        saved = configure_vonage(admin, vonage.base_url).get_data(as_text=True)
        assert "Settings saved." in saved
        with app.app_context():
            stored = settings.get("sms")["vonage"]
            assert "api_secret" not in stored and stored["api_secret_encrypted"] != "secret456"

        admin.post(f"/accounts/{account_id}/send", {"kind": "link", "channel": "sms",
                                                    "idempotency_key": "5e5000000000000000000000000000a1"})
        result = app.test_cli_runner().invoke(args=["worker", "--once", "--threads", "1"])
        assert result.exit_code == 0

        assert len(vonage.accepted) == 1
        sms = vonage.accepted[0]
        assert sms["to"] == "41791230001" and re.search(r"https://activate\.example\.test/m/\S+", sms["text"])
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account.status_label == "Installation SMS sent"
        message = db.session.scalar(select(Message).where(Message.account_id == account_id))
        assert message.status is MessageStatus.SENT and message.provider_id == sms["message-id"]
        url = receipts.callback_urls("http://x")["vonage"].removeprefix("http://x")

    wrong_secret_url = url.rsplit("/", 1)[0] + "/" + "0" * 32
    wrong = app.test_client().post(wrong_secret_url, json={"messageId": sms["message-id"],
                                                           "status": "delivered"})
    assert wrong.status_code == 404
    ok = app.test_client().post(url, json={"messageId": sms["message-id"], "status": "delivered"})
    assert ok.status_code == 204
    with app.app_context():
        assert db.session.get(Message, message.id).status is MessageStatus.DELIVERED


def test_test_sms_reports_the_providers_own_answer(app, admin):
    with FakeVonage("key123", "other-secret") as vonage:
        configure_vonage(admin, vonage.base_url)
        page = admin.post("/admin/settings/test-sms", {"recipient": "+41791234567"},
                          follow_redirects=True).get_data(as_text=True)
    assert "Test SMS not sent" in page and "Bad Credentials" in page
