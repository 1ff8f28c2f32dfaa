"""Account forms: plain, wizard and edit share one set of fields."""

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SearchField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from blueprints.fields import MacField, PhoneField, RuleListField, UsernameField
from models import AccountType, Channel, MessageKind, MessageStatus, Status
from services import bulk
from services.account_rules import DEFAULTS, NAMES


class AccountForm(FlaskForm):
    """Every account field; subclasses drop the ones their page does not offer."""

    account_type = RadioField(
        "Account type", choices=[(t.value, t.label) for t in AccountType], default=DEFAULTS["account_type"]
    )
    username = UsernameField("Username", validators=[DataRequired()],
                             description="3 to 64 letters, digits and - _ . ! ~ * ' ( ) +.")
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    password_repeat = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")]
    )
    callerid = PhoneField("Virtual phone number", validators=[DataRequired()],
                          description="International format with a leading +, e.g. +41791234567.")
    secondary_callerid = PhoneField("Secondary virtual number", validators=[Optional()],
                                    description="Optional; cannot be changed after creation.")
    group_id = SelectField("Group", coerce=int, validators=[DataRequired("Choose a group.")])
    profile_id = SelectField("Provisioning profile", coerce=int, default=0)
    owner = StringField("Owner", validators=[Optional(), Length(max=128)])
    email = StringField("E-mail", validators=[Optional(), Email("Not a valid e-mail address."),
                                              Length(max=254)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    security_model = SelectField("Security model")
    obfuscation = BooleanField("Obfuscation mode", default=DEFAULTS["obfuscation"])
    obfuscation_key = StringField("Obfuscation key", default=DEFAULTS["obfuscation_key"],
                                  validators=[Length(max=32)],
                                  description="Must be the same as on the client.")
    keepalive = BooleanField("Keep-alive enabled", default=DEFAULTS["keepalive"])
    mac_address = MacField("MAC address", validators=[Optional()],
                           description="Optional; bound when the phone first fetches its settings.")
    deny = RuleListField("Deny", description="One <ip>/<netmask> per line, e.g. 0.0.0.0/0.0.0.0.")
    permit = RuleListField("Permit",
                           description="One <ip>/<netmask> per line, e.g. 216.27.242.66/255.255.255.255.")
    licence_expires_on = DateField("Licence expires on", validators=[Optional()])

    def validate_obfuscation_key(self, field) -> None:
        if self.obfuscation.data and not field.data:
            raise ValidationError("Obfuscation needs a key (the default is 9).")

    def service_data(self) -> dict[str, Any]:
        """Return the cleaned values for the accounts service: every account field the page offers."""
        data = {name: self[name].data for name in NAMES if name in self}
        data["profile_id"] = data.get("profile_id") or None
        for name in ("owner", "email", "description", "obfuscation_key"):
            if name in data:
                data[name] = (data[name] or "").strip()
        return data


class WizardForm(AccountForm):
    """Automatic activation: generated password, profile required, E.164 number."""

    password = None
    password_repeat = None
    send_now = RadioField("Then", default="", choices=[
        ("", "Only create the account"),
        ("sms", "Create and send the secure link by SMS"),
        ("email", "Create and send the secure link by e-mail"),
    ])

    def validate_send_now(self, field) -> None:
        if field.data == "email" and not self.email.data:
            raise ValidationError("Sending by e-mail needs the account's e-mail address.")


class EditForm(AccountForm):
    """Edit: the type, the password and both virtual numbers stay as created (the manual's rule)."""

    account_type = None
    password = None
    password_repeat = None
    callerid = None
    secondary_callerid = None


class FilterForm(FlaskForm):
    """The account list's filters (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = SearchField("Search", description='Lucene syntax, e.g. owner:meier AND status:activated')
    group = SelectField("Group", coerce=int, default=0)
    status = SelectField("Status", choices=[("", "Any status")] + [(s.value, s.label()) for s in Status],
                         default="")
    registered = BooleanField("Registered now")


SEND_KINDS = [(MessageKind.LINK.value, "Secure link (install and activate)"),
              (MessageKind.INSTALL.value, "Installation message"),
              (MessageKind.ACTIVATION.value, "Activation message"),
              (MessageKind.PROVISIONING.value,
               "Provisioning message (e-mail, for iPads and devices without a phone)")]
CHANNELS = [(Channel.SMS.value, "SMS"), (Channel.EMAIL.value, "E-mail")]


class SendForm(FlaskForm):
    """Queue a message to the account; the key makes a double-click send once."""

    kind = SelectField("Message", choices=SEND_KINDS, default=MessageKind.LINK.value)
    channel = RadioField("Send by", choices=CHANNELS, default=Channel.SMS.value)
    idempotency_key = HiddenField()  # its shape is checked where it is used: services.idempotency


class BulkForm(FlaskForm):
    """A bulk action over the ticked accounts or the whole search; posted twice: review, then confirm."""

    # No action is chosen until the CSR picks one: the destructive ones come last, never first.
    action = SelectField("Action", validators=[DataRequired()], default="", choices=[
        ("", "Choose an action…"),
        *[(action, bulk.describe(action)) for action in sorted(bulk.SENDS)],
        ("enable", bulk.describe("enable")), ("disable", bulk.describe("disable"))])
    scope = RadioField("Apply to",
                       choices=[("selected", "Ticked accounts"), ("all", "Every account of this search")],
                       default="selected")
    ids = SelectMultipleField(coerce=int, validate_choice=False)
    q = HiddenField(validators=[Optional(), Length(max=2000)])
    group = HiddenField()
    status = HiddenField()
    registered = HiddenField()
    count = IntegerField(validators=[Optional()])  # what the CSR saw on the review page
    confirmed = HiddenField()
    key = HiddenField()  # one per review page; services.idempotency checks it


class MessageFilterForm(FlaskForm):
    """The messages page's filters (GET, no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField("Status", default="", choices=[("", "Any status")] + [(s.value, s.value.capitalize())
                                                                              for s in MessageStatus])
    kind = SelectField("Kind", default="", choices=[("", "Any kind")] + [(k.value, k.value.capitalize())
                                                                        for k in MessageKind])
    gateway = StringField("Gateway", validators=[Optional(), Length(max=32)])
    day = DateField("Day", validators=[Optional()])
