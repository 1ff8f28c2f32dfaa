"""SMS through the Vonage (Nexmo) SMS API: one POST to /sms/json with the account's key and secret.

Settings: `api_key`, `api_secret`, `sender` (the `from`: a Vonage number or up to 11 letters and digits),
`signature_secret` and `signature_method` (signed webhooks), `max_parts` and `base_url`. Delivery receipts
arrive on the account's webhook, by GET or POST as set in the dashboard; `parse_receipt` reads them and
`signature_valid` checks a signed one.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from gateways import sms_http
from gateways.base import PROVIDER_ID_MAX, Outcome, Outgoing, Receipt, Result, SettingField, field_text

BASE_URL = "https://rest.nexmo.com"
# Vonage status codes worth another try: 5 internal error, 10 too many existing binds; 1 is "throttled",
# a wait whose length its text names in milliseconds.
# Every other non-zero status (missing or invalid parameters, bad credentials, unroutable, barred,
# out of credit, not enabled for HTTP, message too long, …) will fail again as it is.
TRANSIENT_STATUSES = frozenset({"5", "10"})
THROTTLED = "1"
_WAIT_MS = re.compile(r"wait \[\s*(\d{1,9})\s*\]")
DELIVERED = frozenset({"delivered"})
FAILED = frozenset({"expired", "failed", "rejected"})  # "accepted", "buffered", "unknown": still open
# Signed webhooks (enabled by Vonage support): the dashboard's signature secret and its method.
SIGNATURE_METHODS = ("md5", "sha1", "sha256", "sha512")
# Vonage's sender rules ("Sender identity"): a number of up to 15 digits in international format without
# + or 00, or up to 11 letters and digits without spaces.
_NUMERIC_SENDER = re.compile(r"[1-9]\d{0,14}")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9]{1,11}")


def check_sender(value: str) -> str:
    """Refuse a sender Vonage would alter or reject."""
    sender = value.strip().removeprefix("+")
    if sender.isdigit() and not _NUMERIC_SENDER.fullmatch(sender):
        raise ValueError("A numeric sender is an international number of up to 15 digits (no 00).")
    if not sender.isdigit() and not _ALPHANUMERIC_SENDER.fullmatch(sender):
        raise ValueError(f"Vonage takes up to 11 letters and digits, without spaces, as a sender "
                         f"({len(sender)} characters given), or a phone number.")
    return sender


class VonageGateway:
    """Send one SMS with Vonage; map its status codes to sent, transient or permanent."""

    name = "vonage"
    default_rate = 30  # Vonage's documented default: 30 SMS API requests a second per API key
    settings_fields = (SettingField("api_key", "API key"),
                       SettingField("api_secret", "API secret", secret=True),
                       SettingField("sender", "Sender", check=check_sender),
                       SettingField("signature_secret", "Signature secret (signed webhooks only)",
                                    secret=True,
                                    description="Set it when Vonage signs your receipts: unsigned ones are "
                                                "then refused. Stored encrypted."),
                       SettingField("signature_method", "Signature method", kind="choice", choices=(
                           ("", "MD5 hash (Vonage's default)"), ("md5", "MD5 HMAC"), ("sha1", "SHA1 HMAC"),
                           ("sha256", "SHA-256 HMAC"), ("sha512", "SHA-512 HMAC"))),
                       *sms_http.shared_fields(default_rate))
    # Vonage splits a long text itself and documents no longest one: the shared default stands.
    default_max_parts = sms_http.DEFAULT_MAX_PARTS

    def __init__(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key") or ""
        self.api_secret = settings.get("api_secret") or ""
        self.sender = (settings.get("sender") or "").lstrip("+")
        self.base_url = (settings.get("base_url") or BASE_URL).rstrip("/")
        self.max_parts = sms_http.max_parts(settings, self.default_max_parts)
        self.rate = sms_http.rate(settings, self.default_rate)

    def send(self, message: Outgoing) -> Result:
        """Hand the SMS to Vonage."""
        # The credentials go in the form body, never in the URL, so no log line can carry them.
        form = {"api_key": self.api_key, "api_secret": self.api_secret, "from": self.sender,
                "to": message.recipient.removeprefix("+"), "text": message.body}
        if not sms_http.is_gsm7(message.body):
            form["type"] = "unicode"  # otherwise Vonage sends GSM-7 and mangles the other characters
        try:
            sms_http.check_international(message.recipient)
            response = sms_http.post("Vonage", f"{self.base_url}/sms/json", data=form,
                                     headers={"Accept": "application/json"})
        except sms_http.ProviderError as exc:
            return exc.result
        parts = sms_http.json_of(response).get("messages") or []
        if response.status_code != 200 or not parts:
            return sms_http.unexpected("Vonage", response)
        # A long text comes back as one entry per part:
        # the first part's id is kept, the first refusal decides.
        refused = [part for part in parts if str(part.get("status")) != "0"]
        if not refused:
            return Result(Outcome.SENT, provider_id=parts[0].get("message-id"))
        status, text = str(refused[0].get("status")), str(refused[0].get("error-text") or "error")
        detail = f"Vonage: {text} (status {status})"
        if len(refused) < len(parts):  # once some part has left, a retry would send those parts twice
            return Result(Outcome.PERMANENT, detail=detail)
        if status == THROTTLED:
            wait = _WAIT_MS.search(text)  # "Throughput Rate Exceeded - please wait [ 1000 ] and retry"
            seconds = min(int(wait.group(1)) / 1000, sms_http.MAX_RETRY_AFTER) if wait else None
            return Result(Outcome.THROTTLED, detail=detail, retry_after=seconds)
        return Result(Outcome.TRANSIENT if status in TRANSIENT_STATUSES else Outcome.PERMANENT, detail=detail)


def parse_receipt(data: Mapping[str, Any]) -> Receipt | None:
    """Read a delivery receipt (its query string, form or JSON); None when it names no message."""
    provider_id = field_text(data, "messageId", "message-id", limit=PROVIDER_ID_MAX)
    if not provider_id:
        return None
    status = field_text(data, "status", limit=32).lower()
    outcome = "delivered" if status in DELIVERED else "failed" if status in FAILED else None
    code = field_text(data, "err-code", limit=16)
    detail = f"Vonage: {status or 'receipt'}" + (f" (err-code {code})" if code and code != "0" else "")
    return Receipt(provider_id, outcome, detail)


def signature_valid(params: Mapping[str, Any], secret: str, method: str) -> bool:
    """Check a signed webhook's `sig` the way Vonage signs it: every other parameter sorted by name, each
    as `&name=value` with & and = in values replaced by _, then MD5 of that and the secret ("md5hash"),
    or an HMAC under the secret ("md5", "sha1", "sha256", "sha512"). An empty method is Vonage's default."""
    given = params.get("sig")
    if not isinstance(given, str) or not secret:
        return False
    signed = "".join(f"&{key}={str(params[key]).replace('&', '_').replace('=', '_')}"
                     for key in sorted(params) if key != "sig")
    if method in ("", "md5hash"):
        expected = hashlib.md5((signed + secret).encode()).hexdigest()
    elif method in SIGNATURE_METHODS:
        expected = hmac.new(secret.encode(), signed.encode(), method).hexdigest()
    else:
        return False
    return hmac.compare_digest(given.lower().encode(), expected.encode())
