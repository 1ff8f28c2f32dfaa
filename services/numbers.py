"""Phone numbers as accounts store them: E.164 with a leading +, or a short internal number."""

import re

import phonenumbers


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
