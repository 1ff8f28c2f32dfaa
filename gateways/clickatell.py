"""SMS through the Clickatell Platform REST API: one POST to /messages with the integration's API key.

Settings: `api_key` (the integration's key, sent as the Authorization header), `sender` (optional: a
two-way integration's number; one-way integrations must leave it empty), `max_parts` and `base_url`.
Delivery reports arrive on the integration's status callback; `parse_receipt` reads them.
"""

from collections.abc import Mapping
from typing import Any

from gateways import sms_http
from gateways.base import PROVIDER_ID_MAX, Outcome, Outgoing, Receipt, Result, SettingField, field_text

BASE_URL = "https://platform.clickatell.com"
# Clickatell error codes worth another try: 130 maximum MT limit exceeded, 901 internal error.
TRANSIENT_CODES = frozenset({130, 901})
# Message status codes of the status callback (001 unknown … 014 maximum MT limit exceeded).
DELIVERED_CODES = frozenset({4})  # received by recipient
# error, cancelled, not delivered, routing, expired, credit
FAILED_CODES = frozenset({5, 6, 7, 9, 10, 12, 14})
DELIVERED_NAMES = frozenset({"received_by_recipient"})
FAILED_NAMES = frozenset({"error_with_message", "user_cancelled_message_delivery", "error_delivering_message",
                          "routing_error", "message_expired", "out_of_credit", "maximum_mt_limit_exceeded"})


def check_sender(value: str) -> str:
    """A two-way integration's number: international digits, up to 15, the + optional."""
    number = value.strip().removeprefix("+")
    if not (number.isascii() and number.isdigit() and 7 <= len(number) <= 15):
        raise ValueError("Clickatell takes the integration's two-way number as a sender, "
                         "+<country><number> (up to 15 digits), or nothing.")
    return number


class ClickatellGateway:
    """Send one SMS with Clickatell; map its error codes to sent, transient or permanent."""

    name = "clickatell"
    default_rate = sms_http.DEFAULT_RATE  # its pages we found name no send rate per integration
    settings_fields = (SettingField("api_key", "API key", secret=True),
                       SettingField("sender", "Sender (two-way numbers only)", check=check_sender),
                       *sms_http.shared_fields(default_rate))
    # Clickatell's documentation: an integration sends at most 3 parts unless its settings allow more
    # (up to 35 when no character needs escaping).
    default_max_parts = 3

    def __init__(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key") or ""
        self.sender = (settings.get("sender") or "").lstrip("+")
        self.base_url = (settings.get("base_url") or BASE_URL).rstrip("/")
        self.max_parts = sms_http.max_parts(settings, self.default_max_parts)
        self.rate = sms_http.rate(settings, self.default_rate)

    def send(self, message: Outgoing) -> Result:
        """Hand the SMS to Clickatell."""
        payload: dict[str, Any] = {"content": message.body, "to": [message.recipient.removeprefix("+")]}
        if self.sender:
            payload["from"] = self.sender
        try:
            sms_http.check_international(message.recipient)
            response = sms_http.post("Clickatell", f"{self.base_url}/messages", json=payload,
                                     headers={"Authorization": self.api_key, "Accept": "application/json"})
        except sms_http.ProviderError as exc:
            return exc.result
        body = sms_http.json_of(response)
        messages = body.get("messages") or [{}]
        first = messages[0] if isinstance(messages[0], dict) else {}
        if first.get("accepted"):
            return Result(Outcome.SENT, provider_id=first.get("apiMessageId"))
        # A refusal is either on the message (a bad number) or on the whole request (a bad key).
        error = first if first.get("error") else body
        if not error.get("error"):
            return sms_http.unexpected("Clickatell", response)
        code = error.get("errorCode")
        description = f" {error['errorDescription']}" if error.get("errorDescription") else ""
        result = sms_http.refusal(response, f"Clickatell: {error['error']}{description} (error {code})")
        if code in TRANSIENT_CODES and result.outcome is Outcome.PERMANENT:
            return Result(Outcome.TRANSIENT, detail=result.detail)
        return result


def parse_receipt(data: Mapping[str, Any]) -> Receipt | None:
    """Read a status callback; None when it names no message. Any body is safe to read: only short
    strings and small numbers of the documented fields count."""
    provider_id = field_text(data, "messageId", "apiMessageId", limit=PROVIDER_ID_MAX)
    if not provider_id:
        return None
    words = field_text(data, "statusDescription", "status")
    for key in ("statusCode", "status", "statusDescription"):
        value = field_text(data, key, limit=64)
        if value.isascii() and value.isdigit():  # "004"; never int() of an unbounded or non-ASCII string
            code = int(value)
            return Receipt(provider_id, _verdict(code, DELIVERED_CODES, FAILED_CODES), _detail(words, value))
        if value:
            name = value.lower().replace(" ", "_")
            return Receipt(provider_id, _verdict(name, DELIVERED_NAMES, FAILED_NAMES), _detail(words, ""))
    return Receipt(provider_id, None)


def _verdict(status: int | str, delivered: frozenset, failed: frozenset) -> str | None:
    """"delivered" or "failed" for a final status, None for one still on its way."""
    if status in delivered:
        return "delivered"
    if status in failed:
        return "failed"
    return None


def _detail(words: str, code: str) -> str:
    return f"Clickatell: {words or 'status'}" + (f" (status {code})" if code else "")
