"""Form fields that normalise what a CSR types (numbers, MAC addresses, access rules)."""

import re

from wtforms import StringField, TextAreaField

from services.access_rules import normalise_rule
from services.numbers import normalise_number


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
