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
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
    EqualTo,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from blueprints.forms_util import service_rule
from gateways import SMS_GATEWAYS, SmtpGateway
from gateways.base import SettingField
from gateways.sms_http import MAX_RATE
from models import Platform, Role
from services import app_handoff

_HOST = r"(?=.{1,253}(:|$))([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}"
HOSTNAME = Regexp(rf"^{_HOST}(:\d{{1,5}})?$",
                  message="A host name such as sip.example.com (optionally :port).")
# The SIP server's port has a field of its own: the activation file gives host and port apart.
SIP_HOST = Regexp(rf"^{_HOST}$",
                  message="A host name such as sip.example.com; its port goes in SIP server port.")


# Install answers with a redirect to the download URL, which the page's policy lets forms reach for web
# origins only (headers.csp_with_form_targets): another scheme would be blocked in the browser.
WEB_ADDRESS = Regexp(r"^https?://", flags=re.IGNORECASE,
                     message="An https:// (or http://) address: the Install button redirects there, and "
                             "a browser does not follow a redirect to another kind of link such as "
                             "itms-services:.")
# Settings and profile options are small: a deeper or longer value is a mistake or an attack (Python's JSON
# parser and serialiser recurse: 5,000 levels raise RecursionError).
MAX_JSON_DEPTH = 16
MAX_JSON_CHARS = 20_000
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def check_json_size(text: str) -> None:
    """Refuse JSON text longer than MAX_JSON_CHARS or nested deeper than MAX_JSON_DEPTH, before parsing it."""
    if len(text) > MAX_JSON_CHARS:
        raise ValueError(f"The JSON is {len(text):,} characters long; "
                         f"at most {MAX_JSON_CHARS:,} are allowed.")
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
    sip_host = StringField("SIP server host", validators=[DataRequired(), SIP_HOST])
    sip_port = IntegerField("SIP server port", validators=[Optional(), NumberRange(1, 65535)],
                            description="Empty: 5061 for TLS, 5060 for TCP and UDP.")
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
    """Links and activation settings; gateway fields are added as each gateway declares them, download URL
    fields per platform and model."""

    public_base_url = URLField("Public base URL", validators=[DataRequired(), URL(require_tld=False)],
                               description="Links in messages start with this, "
                                           "e.g. https://activate.example.com.")
    link_max_age_hours = IntegerField("Link lifetime (hours)", validators=[NumberRange(1, 24 * 30)])
    activation_mime_type = StringField("Activation MIME type", validators=[
        DataRequired(), Length(max=200), service_rule(app_handoff.check_mime_type)],
        description="The app's own type (application/x-… or application/vnd.…), "
                    "never one a browser renders.")
    app_uri_scheme = StringField("App URI scheme", validators=[
        DataRequired(), Length(max=64), service_rule(app_handoff.check_uri_scheme)],
        description="The app's own scheme (e.g. provisio), never http, javascript, data, file and the like.")
    applications = JSONField("Applications (host names)",
                             description='Host names the client uses, e.g. {"sip": "sip.example.com"}.')


class TestEmailForm(FlaskForm):
    """Where to send a test e-mail."""

    recipient = StringField("Send a test e-mail to", validators=[DataRequired(), Email()])


def settings_form(platforms: list[str], models: list[str]) -> type[SettingsForm]:
    """Return a SettingsForm class with the fields every gateway declares and one download URL field per
    (platform, security model)."""

    class Form(SettingsForm):
        pass

    for setting in SmtpGateway.settings_fields:
        setattr(Form, gateway_field(None, setting.key), _setting_field(setting))
    Form.sms_gateway = SelectField("Default SMS gateway", choices=[("", "None (e-mail only)")] + [
        (name, name.capitalize()) for name in SMS_GATEWAYS])
    for provider, gateway in SMS_GATEWAYS.items():
        for setting in gateway.settings_fields:
            setattr(Form, gateway_field(provider, setting.key), _setting_field(setting))
    for platform in platforms:
        for model in models:
            setattr(Form, download_field(platform, model),
                    URLField(f"{Platform(platform).label} / {model}",
                             validators=[Optional(), URL(require_tld=False), WEB_ADDRESS]))
    return Form


# What the form checks of a gateway setting, by its kind, beyond required or optional. Not Email() for an
# address: a relay's sender may be a local name such as provisio@localhost.
_CHECKS = {"url": URL(require_tld=False), "host": HOSTNAME, "port": NumberRange(1, 65535),
           "count": NumberRange(1, 255), "rate": NumberRange(1, MAX_RATE),
           "address": Regexp(r"^[^@\s]+@[^@\s]+$", message="An address such as provisio@example.com.")}
_FIELD_CLASSES = {"url": URLField, "port": IntegerField, "count": IntegerField, "rate": IntegerField}


def _provider_rule(check):
    """A field validator applying a gateway's own rule for a value (gateways/base.py SettingField.check)."""

    def validate(_form, field) -> None:
        if field.data:
            try:
                field.data = check(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None

    return validate


def _setting_field(setting: SettingField):
    """The form field of one gateway setting, as its declaration describes it."""
    if setting.kind == "choice":
        return SelectField(setting.label, choices=list(setting.choices), default=setting.choices[0][0])
    if setting.kind == "check":
        return BooleanField(setting.label)
    validators = [DataRequired() if setting.required else Optional()]
    if setting.kind == "text":
        field_class = PasswordField if setting.secret else StringField
        rules = [_provider_rule(setting.check)] if setting.check else []
        return field_class(setting.label, validators=[*validators, Length(max=setting.max_length), *rules],
                           description=setting.description)
    field_class = _FIELD_CLASSES.get(setting.kind, StringField)
    return field_class(setting.label, validators=[*validators, _CHECKS[setting.kind]],
                       description=setting.description)


def gateway_field(provider: str | None, key: str) -> str:
    """The form field name of one gateway setting: the e-mail gateway's (provider None) or an SMS one's."""
    return f"mail_{key}" if provider is None else f"sms_{provider}_{key}"


def download_field(platform: str, model: str) -> str:
    """The form field name of one download URL."""
    return f"download_{platform}_{model}".replace("-", "_")


class TemplateForm(FlaskForm):
    """One message template; Preview renders it with sample values without saving."""

    subject = StringField("Subject (e-mail only)", validators=[Optional(), Length(max=200)])
    body = TextAreaField("Text", validators=[Length(max=4000)],
                         description="Placeholders: {{ link }}, {{ owner }}, {{ username }}, {{ group }}. "
                                     "Empty restores the default.")


class TestSmsForm(FlaskForm):
    """Where to send a test SMS."""

    recipient = StringField("Send a test SMS to", validators=[
        DataRequired(), Regexp(r"^\+[1-9]\d{6,14}$", message="An international number, e.g. +41791234567.")])
