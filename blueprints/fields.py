"""Form fields that normalise what a CSR types (usernames, numbers, MAC addresses, access rules)."""

from wtforms import StringField, TextAreaField

from services.access_rules import normalise_rule
from services.account_rules import parse_mac, parse_username
from services.numbers import normalise_number


class PhoneField(StringField):
    """A phone number, normalised to E.164 when it starts with +."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data:
            self.data = normalise_number(self.data)
        else:
            self.data = None


class UsernameField(StringField):
    """A username as a SIP URI's user part carries it (services/account_rules.parse_username)."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.data = parse_username((self.data or "").strip()) or ""


class MacField(StringField):
    """A MAC address in any usual notation, stored as 12 upper-case hex digits."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.data = parse_mac(self.data or "")


class RuleListField(TextAreaField):
    """One `<ip>/<netmask>` rule per line, normalised to a dotted netmask."""

    def process_formdata(self, valuelist):
        lines = (valuelist[0] if valuelist else "").splitlines()
        self.data = [line.strip() for line in lines if line.strip()]
        self.data = [normalise_rule(line) for line in self.data]

    def _value(self) -> str:
        return "\n".join(self.data or [])
