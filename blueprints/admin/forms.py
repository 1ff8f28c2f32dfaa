"""Forms for groups, profiles and staff users."""

import json

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from models import Role

HOSTNAME = Regexp(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}(:\d{1,5})?$",
    message="A host name such as sip.example.com (optionally :port).")


class JSONField(TextAreaField):
    """A JSON object typed in a text area."""

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "").strip() or "{}"
        try:
            self.data = json.loads(text)
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
