"""Forms for groups, profiles, staff users and settings."""

import json
import math
import re

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import URL, DataRequired, Email, EqualTo, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from blueprints.forms_util import service_rule
from models import Role
from services import app_handoff

HOSTNAME = Regexp(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}(:\d{1,5})?$",
    message="A host name such as sip.example.com (optionally :port).")


# Settings and profile options are small: a deeper or longer value is a mistake or an attack (Python's JSON
# parser and serialiser recurse: 5,000 levels raise RecursionError).
MAX_JSON_DEPTH = 16
MAX_JSON_CHARS = 20_000
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def check_json_size(text: str) -> None:
    """Refuse JSON text longer than MAX_JSON_CHARS or nested deeper than MAX_JSON_DEPTH, before parsing it."""
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"The JSON is {len(text):,} characters long; at most {MAX_JSON_CHARS:,} are allowed.")
    depth = deepest = 0
    for char in _JSON_STRING.sub('""', text):  # brackets inside strings are text
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ValueError(f"The JSON nests {deepest} levels deep; at most {MAX_JSON_DEPTH} are allowed.")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON a database stores; write a number.")


def _finite(text: str) -> float:
    if not math.isfinite(value := float(text)):
        raise ValueError(f"{text} is too large a number.")
    return value


class JSONField(TextAreaField):
    """A JSON object typed in a text area, of bounded size and depth (check_json_size)."""

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "").strip() or "{}"
        try:
            check_json_size(text)
            self.data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        except json.JSONDecodeError as exc:
            self.data = None
            raise ValueError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(self.data, dict):
            raise ValueError('Write a JSON object, e.g. {"codecs": ["opus", "g722"]}.')

    def _value(self) -> str:
        return json.dumps(self.data or {}, indent=2, sort_keys=True)


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes for one list of choices."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class GroupForm(FlaskForm):
    """A group and its default provisioning profile."""

    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    profile_id = SelectField("Provisioning profile", coerce=int, default=0)


class ProfileForm(FlaskForm):
    """The settings an activation file carries."""

    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    sip_host = StringField("SIP/TLS server host", validators=[DataRequired(), HOSTNAME])
    provisioning_host = StringField("Provisioning and licence host", validators=[DataRequired(), HOSTNAME])
    transport = SelectField("Transport", choices=[("tls", "TLS"), ("tcp", "TCP"), ("udp", "UDP")],
                            default="tls")
    refetch_hours = IntegerField("Re-fetch configuration every (hours)", default=24,
                                 validators=[NumberRange(1, 24 * 30)])
    options = JSONField("Options (JSON)", description='Codecs and client options, e.g. {"codecs": ["opus"]}.')


class StaffForm(FlaskForm):
    """A staff user's role and group scope."""

    username = StringField("Username", validators=[
        DataRequired(), Length(max=64), Regexp(r"^[\w.@-]+$", message="Letters, digits and . _ @ - only.")
    ])
    full_name = StringField("Full name", validators=[Optional(), Length(max=128)])
    role = SelectField("Role", choices=[(r.value, r.value.upper() if r is Role.CSR else r.value.capitalize())
                                        for r in Role], default=Role.CSR.value)
    group_ids = MultiCheckboxField("Groups (for CSRs and viewers)", coerce=int)
    active = BooleanField("Active", default=True)
    password = PasswordField("Password", validators=[Optional(), Length(max=256)],
                             description="At least 12 characters. Leave empty to keep the current one.")
    repeat = PasswordField("Repeat password", validators=[EqualTo("password", "The passwords differ.")])


class SettingsForm(FlaskForm):
    """Links, activation and e-mail settings; download URL fields are added per platform and model."""

    public_base_url = URLField("Public base URL", validators=[DataRequired(), URL(require_tld=False)],
                               description="Links in messages start with this, e.g. https://activate.example.com.")
    link_max_age_hours = IntegerField("Link lifetime (hours)", validators=[NumberRange(1, 24 * 30)])
    activation_mime_type = StringField("Activation MIME type", validators=[
        DataRequired(), Length(max=200), service_rule(app_handoff.check_mime_type)],
        description="The app's own type (application/x-… or application/vnd.…), never one a browser renders.")
    app_uri_scheme = StringField("App URI scheme", validators=[
        DataRequired(), Length(max=64), service_rule(app_handoff.check_uri_scheme)],
        description="The app's own scheme (e.g. provisio), never http, javascript, data, file and the like.")
    applications = JSONField("Applications (host names)",
                             description='Host names the client uses, e.g. {"sip": "sip.example.com"}.')
    mail_mode = SelectField("E-mail gateway", choices=[("smtp", "SMTP relay (no authentication)"),
                                                       ("gmail", "Gmail (STARTTLS, app password)")])
    mail_host = StringField("SMTP host", validators=[Optional(), HOSTNAME])
    mail_port = IntegerField("SMTP port", validators=[Optional(), NumberRange(1, 65535)])
    mail_starttls = BooleanField("Use STARTTLS")
    mail_username = StringField("Username (Gmail address)", validators=[Optional(), Length(max=254)])
    mail_password = PasswordField("Password (Gmail app password)", validators=[Optional(), Length(max=256)],
                                  description="Stored encrypted. Leave empty to keep the current one.")
    # Not Email(): a relay's sender may be a local name such as provisio@localhost.
    mail_sender = StringField("Sender address", validators=[
        DataRequired(), Regexp(r"^[^@\s]+@[^@\s]+$", message="An address such as provisio@example.com.")])


class TestEmailForm(FlaskForm):
    """Where to send a test e-mail."""

    recipient = StringField("Send a test e-mail to", validators=[DataRequired(), Email()])


def settings_form(platforms: list[str], models: list[str]) -> type[SettingsForm]:
    """Return a SettingsForm class with one download URL field per (platform, security model)."""

    class Form(SettingsForm):
        sms_gateway = SelectField("Default SMS gateway", choices=[("", "None (e-mail only)")] + [
            (name, name.capitalize()) for name in SMS_FIELDS])

    for provider, fields in SMS_FIELDS.items():
        for key, label, secret in fields:
            field_class = PasswordField if secret else StringField
            setattr(Form, sms_field(provider, key), field_class(label, validators=[Optional(), Length(max=256)]))
        setattr(Form, sms_field(provider, "base_url"),
                URLField("Base URL (empty: the provider's)", validators=[Optional(), URL(require_tld=False)]))
    for platform in platforms:
        for model in models:
            setattr(Form, download_field(platform, model),
                    URLField(f"{platform} / {model}", validators=[Optional(), URL(require_tld=False)]))
    return Form


def download_field(platform: str, model: str) -> str:
    """The form field name of one download URL."""
    return f"download_{platform}_{model}".replace("-", "_")


class TemplateForm(FlaskForm):
    """One message template; Preview renders it with sample values without saving."""

    subject = StringField("Subject (e-mail only)", validators=[Optional(), Length(max=200)])
    body = TextAreaField("Text", validators=[Length(max=4000)],
                         description="Placeholders: {{ link }}, {{ owner }}, {{ username }}, {{ group }}. "
                                     "Empty restores the default.")


# Each SMS provider's settings: (key, label, secret). Secrets are stored encrypted.
SMS_FIELDS: dict[str, list[tuple[str, str, bool]]] = {
    "aspsms": [("userkey", "Userkey", False), ("password", "API password", True),
               ("originator", "Originator", False)],
    "orange": [("client_id", "Client id", False), ("client_secret", "Client secret", True),
               ("sender_address", "Sender address (+country number)", False),
               ("sender_name", "Sender name (optional)", False)],
    "clickatell": [("api_key", "API key", True), ("sender", "Sender (two-way numbers only)", False)],
    "vonage": [("api_key", "API key", False), ("api_secret", "API secret", True), ("sender", "Sender", False)],
}


def sms_field(provider: str, key: str) -> str:
    """The form field name of one SMS provider setting."""
    return f"sms_{provider}_{key}"


class TestSmsForm(FlaskForm):
    """Where to send a test SMS."""

    recipient = StringField("Send a test SMS to", validators=[
        DataRequired(), Regexp(r"^\+[1-9]\d{6,14}$", message="An international number, e.g. +41791234567.")])
