"""The settings service keeps the gateways' secrets: encrypted when typed, kept by a blank field, decrypted
for the gateways only; each gateway declares the fields the settings form asks for."""

import logging

import pytest
from sqlalchemy import select
from wtforms import PasswordField

from blueprints.admin.forms import gateway_field, settings_form
from extensions import db, vault
from gateways import SMS_GATEWAYS, SmtpGateway
from models import AuditEvent
from services import settings
from tests.security.html_forms import forms
from tests.webtools import page_text

MAIL = {"mode": "smtp", "host": "relay.example.test", "port": 587, "starttls": True, "username": "relay",
        "sender": "provisio@example.test"}


def stored_secret(section: dict, key: str) -> str:
    """The plain secret a stored section keeps under `key` (asserting it is not stored in the clear)."""
    assert key not in section
    return vault.decrypt(section[key + settings.SEALED])


def test_a_typed_secret_is_stored_encrypted(app):
    with app.app_context():
        vonage = {"api_key": "key", "api_secret": "vonage-2"}
        settings.save_typed({"mail": {**MAIL, "password": "mail pass 1"},
                             "sms": {"gateway": "vonage", "vonage": vonage}}, actor="test")

        mail, vonage = settings.get("mail"), settings.get("sms")["vonage"]
        assert stored_secret(mail, "password") == "mail pass 1"
        assert stored_secret(vonage, "api_secret") == "vonage-2"
        assert mail["password_encrypted"] != "mail pass 1"
        assert {key: mail[key] for key in MAIL} == MAIL
        assert (settings.get("sms")["gateway"], vonage["api_key"]) == ("vonage", "key")


def test_a_blank_secret_keeps_the_stored_one_of_a_row_written_before(app):
    with app.app_context():
        # An existing deployment's rows, written as every release so far has written them.
        mail_secret, aspsms_secret = vault.encrypt("old mail pass"), vault.encrypt("old aspsms pass")
        aspsms = {"userkey": "u1", "password_encrypted": aspsms_secret}
        settings.save({"mail": {**MAIL, "password_encrypted": mail_secret},
                       "sms": {"gateway": "aspsms", "aspsms": aspsms}}, actor="test")

        settings.save_typed({"mail": {**MAIL, "host": "relay2.example.test", "password": ""},
                             "sms": {"gateway": "aspsms", "aspsms": {"userkey": "u2", "password": None}}},
                            actor="test")

        mail, aspsms = settings.get("mail"), settings.get("sms")["aspsms"]
        assert (mail["host"], mail["password_encrypted"]) == ("relay2.example.test", mail_secret)
        assert (aspsms["userkey"], aspsms["password_encrypted"]) == ("u2", aspsms_secret)
        assert settings.for_gateways()["sms"]["aspsms"]["password"] == "old aspsms pass"


def test_a_new_secret_replaces_the_stored_one_and_a_blank_value_is_left_out(app):
    with app.app_context():
        settings.save_typed({"sms": {"gateway": "", "orange": {"client_id": "id", "client_secret": "first"}}},
                            actor="test")
        typed = {"client_id": " id2 ", "client_secret": " second ", "sender_name": "", "base_url": None}
        settings.save_typed({"sms": {"gateway": "", "orange": typed}}, actor="test")

        orange = settings.get("sms")["orange"]
        assert sorted(orange) == ["client_id", "client_secret_encrypted"]
        assert (orange["client_id"], stored_secret(orange, "client_secret")) == ("id2", "second")
        assert settings.get("sms")["vonage"] == {}


def test_for_gateways_decrypts_every_secret_and_leaves_the_stored_settings_sealed(app):
    with app.app_context():
        settings.save_typed({"mail": {**MAIL, "password": "mail pass 3"},
                             "sms": {"gateway": "clickatell", "clickatell": {"api_key": "click-4"}}},
                            actor="test")

        opened = settings.for_gateways()

        assert opened["mail"] == {**MAIL, "password": "mail pass 3"}
        assert opened["sms"]["clickatell"] == {"api_key": "click-4"}
        assert opened["sms"]["gateway"] == "clickatell"
        assert "password" not in settings.get("mail") and "api_key" not in settings.get("sms")["clickatell"]


def test_shown_values_leave_every_secret_out(app):
    with app.app_context():
        settings.save_typed({"sms": {"gateway": "", "vonage": {"api_key": "key", "api_secret": "hidden-5",
                                                               "sender": "Provisio"}}}, actor="test")
        vonage = settings.get("sms")["vonage"]

        assert settings.shown(vonage, SMS_GATEWAYS["vonage"].settings_fields) == {
            "api_key": "key", "sender": "Provisio", "signature_method": None, "max_parts": None,
            "rate": None, "base_url": None}
        assert settings.has_secret(vonage, "api_secret")
        assert not settings.has_secret(vonage, "api_key")


def test_each_gateway_declares_its_settings_and_the_form_has_exactly_those_fields(app):
    vonage = {field.key: field.secret for field in SMS_GATEWAYS["vonage"].settings_fields}
    assert vonage == {"api_key": False, "api_secret": True, "sender": False, "signature_secret": True,
                      "signature_method": False, "max_parts": False, "rate": False, "base_url": False}
    assert [field.key for field in SmtpGateway.settings_fields if field.secret] == ["password"]

    with app.test_request_context():
        form = settings_form([], [])(meta={"csrf": False})
    declared = [(gateway_field(None, field.key), field) for field in SmtpGateway.settings_fields] + [
        (gateway_field(name, field.key), field) for name, gateway in SMS_GATEWAYS.items()
        for field in gateway.settings_fields]
    for name, field in declared:
        assert form[name].label.text == field.label
        assert isinstance(form[name], PasswordField) is field.secret, name
    gateway_fields = {name for name in form._fields if name.startswith(("mail_", "sms_"))} - {"sms_gateway"}
    assert gateway_fields == {name for name, _ in declared}
    assert [value for value, _ in form.sms_gateway.choices] == ["", *SMS_GATEWAYS]


SECRETS = {"mail_password": "mail pass 6", "sms_aspsms_password": "aspsms-7",
           "sms_orange_client_secret": "orange-8", "sms_clickatell_api_key": "clickatell-9",
           "sms_vonage_api_secret": "vonage-10"}


def test_the_settings_page_never_shows_a_secret_and_a_blank_field_keeps_it(app, admin, caplog):
    caplog.set_level(logging.DEBUG)
    form = next(form for form in forms(page_text(admin.get("/admin/settings"))) if form.method == "post"
                and not form.action).data()
    saved = admin.post("/admin/settings", {**form, **SECRETS, "mail_sender": "provisio@example.test"},
                       follow_redirects=True)
    assert "Settings saved." in page_text(saved)

    page = page_text(admin.get("/admin/settings"))
    with app.app_context():
        stored = {"mail": settings.get("mail"), **settings.get("sms")}
        sealed = [value for section in stored.values() if isinstance(section, dict)
                  for key, value in section.items() if key.endswith(settings.SEALED)]
        audit = [event.detail for event in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "settings.update"))]
    assert len(sealed) == len(SECRETS)
    for text in [*SECRETS.values(), *sealed]:
        assert text not in page and text not in caplog.text
        assert all(text not in str(detail) for detail in audit)
    assert audit[-1] == {"keys": ["activation_mime_type", "app_uri_scheme", "applications", "download_urls",
                                  "link_max_age_hours", "mail", "public_base_url", "sms"]}

    [again] = [form for form in forms(page) if form.method == "post" and not form.action]
    assert all(again.data()[name] == "" for name in SECRETS)
    admin.post("/admin/settings", again.data())
    with app.app_context():
        opened = settings.for_gateways()
        assert opened["mail"]["password"] == SECRETS["mail_password"]
        assert opened["sms"]["vonage"]["api_secret"] == SECRETS["sms_vonage_api_secret"]
        assert opened["sms"]["clickatell"]["api_key"] == SECRETS["sms_clickatell_api_key"]


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_provider_secret_with_spaces_keeps_the_stored_one(app, blank):
    with app.app_context():
        settings.save_typed({"sms": {"gateway": "", "vonage": {"api_secret": "kept-11"}}}, actor="test")
        settings.save_typed({"sms": {"gateway": "", "vonage": {"api_secret": blank}}}, actor="test")
        assert settings.for_gateways()["sms"]["vonage"]["api_secret"] == "kept-11"


@pytest.mark.parametrize("url", ["itms-services://?action=download-manifest&url=https://x.test/app.plist",
                                 "market://details?id=ch.example.voice", "ftp://files.example.test/app.apk"])
def test_a_download_url_the_install_redirect_cannot_reach_is_refused_and_nothing_is_saved(app, admin, url):
    form = next(form for form in forms(page_text(admin.get("/admin/settings"))) if form.method == "post"
                and not form.action).data()
    field = next(name for name in form if name.startswith("download_ios_"))

    response = admin.post("/admin/settings", {**form, field: url})

    assert response.status_code == 200
    assert "the Install button redirects there" in page_text(response)
    with app.app_context():
        assert url not in str(settings.get("download_urls"))
