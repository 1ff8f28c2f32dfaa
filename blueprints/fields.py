"""Form fields that normalise what a CSR types (numbers, MAC addresses, access rules)."""

import re

import phonenumbers
from wtforms import StringField, TextAreaField

from services.access_rules import normalise_rule


def normalise_number(text: str) -> str:
    """Return an E.164 number (+ and digits) or a short internal number (digits only)."""
    text = text.strip()
    if text.startswith("+"):
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            raise ValueError("Not a phone number. Write it as +<country code><number>.") from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("This number does not exist in its country's numbering plan.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = re.sub(r"[\s\-./()]", "", text)
    if not re.fullmatch(r"\d{2,15}", digits):
        raise ValueError("Use +<country code><number>, or a short internal number of digits.")
    return digits


class PhoneField(StringField):
    """A phone number, normalised to E.164 when it starts with +."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data:
            self.data = normalise_number(self.data)
        else:
            self.data = None


class MacField(StringField):
    """A MAC address in any usual notation, stored as 12 upper-case hex digits."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if not self.data:
            self.data = None
            return
        digits = re.sub(r"[\s:.\-]", "", self.data).upper()
        if not re.fullmatch(r"[0-9A-F]{12}", digits):
            raise ValueError("A MAC address has 12 hexadecimal digits, e.g. 00:04:13:92:2D:24.")
        self.data = digits


class RuleListField(TextAreaField):
    """One `<ip>/<netmask>` rule per line, normalised to a dotted netmask."""

    def process_formdata(self, valuelist):
        lines = (valuelist[0] if valuelist else "").splitlines()
        self.data = [line.strip() for line in lines if line.strip()]
        self.data = [normalise_rule(line) for line in self.data]

    def _value(self) -> str:
        return "\n".join(self.data or [])
