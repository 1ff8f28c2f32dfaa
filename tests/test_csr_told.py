"""What the CSR and the admin are told: the SMS count of what will be sent, provider limits when saving,
the provider's own reason for a refusal, and a replaced message shown as superseded, not failed."""

import re

import pytest
from sqlalchemy import select

from extensions import db
from gateways.base import Outcome
from gateways.sms_http import is_gsm7
from models import Account, Channel, Message, MessageKind, MessageStatus, StaffUser
from services import delivery, message_templates, messaging, settings
from tests.test_sms_gateways import SECRET, orange_gateway, sms
from tests.test_sms_path import configure_vonage
from tools.fake_providers import FakeOrange, FakeVonage

PUBLIC = "https://activate.example.test"


def test_the_templates_page_counts_the_default_link_sms_as_the_gsm7_sms_it_is(app, admin):
    with app.app_context():  # a short public URL: the default link SMS then fits one GSM-7 segment
        settings.save({"public_base_url": "https://p.example"}, actor="test")
    page = admin.get("/admin/templates").get_data(as_text=True)
    row = re.search(r"<td>link</td><td>SMS</td>.*?</tr>", page, re.S)
    assert row, page
    assert "GSM-7" in row.group(0) and "UCS-2" not in row.group(0)
    assert re.search(r"\b1 segment", row.group(0))


def test_the_sample_link_has_a_real_links_length_and_alphabet(app, admin_id, make_account):
    account_id = make_account(wizard=True)
    with app.app_context():
        settings.save({"public_base_url": PUBLIC, "sms": {"gateway": "vonage"}}, actor="test")
        sample = message_templates.sample_context()["link"]
        message = messaging.queue(db.session.get(Account, account_id), MessageKind.LINK, Channel.SMS,
                                  actor=db.session.scalar(select(StaffUser)))
        real = delivery.render(message, message.account, settings.for_gateways()).body
    link = re.search(r"https://\S+", real).group(0)
    assert len(sample) == len(link) and sample.startswith(f"{PUBLIC}/m/")
    assert is_gsm7(sample) and is_gsm7(link)


def save_sms_settings(admin, default: str, **typed):
    form = {"public_base_url": PUBLIC, "link_max_age_hours": "72",
            "activation_mime_type": "application/x-provisio-activation", "app_uri_scheme": "provisio",
            "applications": "{}", "mail_mode": "smtp", "mail_host": "127.0.0.1", "mail_port": "25",
            "mail_sender": "provisio@example.test", "sms_gateway": default,
            **{f"sms_{key}": value for key, value in typed.items()}}
    return admin.post("/admin/settings", form, follow_redirects=True).get_data(as_text=True)


@pytest.mark.parametrize(("field", "value", "words"), [
    ("aspsms_originator", "A" * 17, "ASPSMS takes up to 11 letters, digits and spaces as a sender (17"),
    ("vonage_sender", "B" * 21, "Vonage takes up to 11 letters and digits, without spaces, as a sender (21"),
    ("vonage_sender", "1" * 16, "up to 15 digits"),
    ("clickatell_sender", "Provisio", "Clickatell takes the integration"),
])
def test_a_sender_the_provider_would_refuse_is_refused_when_saving(app, admin, field, value, words):
    page = save_sms_settings(admin, "", **{field: value})

    assert "Settings saved." not in page
    assert words in page
    with app.app_context():
        provider, key = field.split("_", 1)
        assert key not in (settings.get("sms").get(provider) or {})


def test_a_sender_within_the_providers_rules_is_saved(app, admin):
    page = save_sms_settings(admin, "", aspsms_originator="Provisio AG", vonage_sender="41791234567",
                             clickatell_sender="+41791234567")
    assert "Settings saved." in page
    with app.app_context():
        sms = settings.get("sms")
    assert (sms["aspsms"]["originator"], sms["vonage"]["sender"], sms["clickatell"]["sender"]) == (
        "Provisio AG", "41791234567", "41791234567")


TWELVE_PARTS = "Hello {{ owner }}, " + "please install the app and keep this message. " * 40 + "{{ link }}"


def test_a_template_longer_than_the_gateway_sends_is_refused_when_saved(app, admin):
    save_sms_settings(admin, "clickatell", clickatell_api_key="key")
    page = admin.post("/admin/templates/link/sms", {"subject": "", "body": TWELVE_PARTS},
                      follow_redirects=True).get_data(as_text=True)

    assert "Template link / sms saved." not in page
    assert re.search(r"This SMS would go as 1[23] parts \(GSM-7\); Clickatell sends at most 3", page)
    with app.app_context():
        assert "link/sms" not in settings.get("templates")


@pytest.mark.parametrize("rate", ["0", "20000", "fast"])
def test_a_send_rate_no_gateway_can_have_is_refused_and_a_good_one_is_kept(app, admin, rate):
    page = save_sms_settings(admin, "vonage", vonage_api_key="k", vonage_rate=rate)
    assert "Settings saved." not in page and "Messages per second" in page
    with app.app_context():
        assert not (settings.get("sms").get("vonage") or {}).get("rate")
    assert "Settings saved." in save_sms_settings(admin, "vonage", vonage_api_key="k", vonage_rate="5")
    with app.app_context():
        assert settings.get("sms")["vonage"]["rate"] == 5


def test_raising_the_part_limit_lets_the_template_save_and_lowering_it_again_is_refused(app, admin):
    assert "Settings saved." in save_sms_settings(admin, "vonage", vonage_api_key="k", vonage_max_parts="14")
    page = admin.post("/admin/templates/link/sms", {"subject": "", "body": TWELVE_PARTS},
                      follow_redirects=True).get_data(as_text=True)
    assert "Template link / sms saved." in page

    page = save_sms_settings(admin, "clickatell", vonage_api_key="k", vonage_max_parts="14")
    assert "Settings saved." not in page
    assert "The link SMS template: This SMS would go as" in page and "Clickatell sends at most 3" in page


@pytest.mark.parametrize("body", [
    {"requestError": {"policyException": {"messageId": "POL0001", "text": "Policy error: %1",
                                          "variables": ["Insufficient SMS bundle balance"]}}},
    {"requestError": {"policyException": {"messageId": "POL3003",
                                          "text": "Insufficient SMS bundle balance"}}},
    {"code": 4003, "message": "Forbidden", "description": "Insufficient SMS bundle balance"},
    {"message": "Insufficient SMS bundle balance"},
    {"error": {"code": 4003, "message": "Insufficient SMS bundle balance"}},
    {"requestError": "Insufficient SMS bundle balance"},
])
def test_orange_keeps_its_own_reason_for_a_refusal(body):
    with FakeOrange(client_id="client", client_secret=SECRET, sender_address="+2250000") as orange:
        orange.no_bundle_body = body
        orange_gateway(orange).send(sms())  # take a token first, so the failure meets the SMS request
        orange.fail_next(1, "no_bundle")
        result = orange_gateway(orange).send(sms())

    assert result.outcome is Outcome.PERMANENT
    assert "Insufficient SMS bundle balance" in result.detail and "(HTTP 403)" in result.detail


def test_a_server_error_page_is_named_not_shown(app, csr, admin, make_account):
    account_id = make_account(wizard=True)
    with FakeVonage("key123", "secret456") as vonage:
        configure_vonage(admin, vonage.base_url)
        vonage.fail_next(1)  # an HTML 503 page, as a proxy in front of the provider answers
        csr.post(f"/accounts/{account_id}/send", {"kind": "link", "channel": "sms",
                                                  "idempotency_key": "5e5000000000000000000000000000b2"})
        app.test_cli_runner().invoke(args=["worker", "--once", "--threads", "1"])
        page = csr.get(f"/accounts/{account_id}").get_data(as_text=True)

    assert "Vonage answered HTTP 503 Service Unavailable with an error page instead of its API" in page
    assert "&lt;h1&gt;" not in page and "<h1>503" not in page


def test_a_message_replaced_before_it_left_is_superseded_and_not_a_failure(app, csr, admin, make_account):
    account_id = make_account(wizard=True)
    with FakeVonage("key123", "secret456") as vonage:
        configure_vonage(admin, vonage.base_url)
        for key in ("5e5000000000000000000000000000c1", "5e5000000000000000000000000000c2"):
            csr.post(f"/accounts/{account_id}/send",
                     {"kind": "link", "channel": "sms", "idempotency_key": key})
        app.test_cli_runner().invoke(args=["worker", "--once", "--threads", "1"])
        detail = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
        dashboard = csr.get("/").get_data(as_text=True)

    assert len(vonage.accepted) == 1
    with app.app_context():
        first, second = db.session.scalars(select(Message).order_by(Message.id)).all()
        assert (first.status, second.status) == (MessageStatus.SUPERSEDED, MessageStatus.SENT)
    assert "superseded" in detail and "Superseded by a newer message before it was sent." in detail
    assert re.search(r">0</strong> failed", dashboard)
