"""SMS through the Vonage (Nexmo) SMS API: one POST to /sms/json with the account's key and secret.

Settings: `api_key`, `api_secret`, `sender` (the `from`: a Vonage number or up to 11 letters and digits)
and `base_url`. Delivery receipts arrive on the account's webhook; `parse_receipt` reads them.
"""

from collections.abc import Mapping
from typing import Any

from gateways import sms_http
from gateways.base import Outcome, Outgoing, Result, SettingField

BASE_URL = "https://rest.nexmo.com"
# Vonage status codes worth another try: 1 throttled, 5 internal error, 10 too many existing binds.
# Every other non-zero status (missing or invalid parameters, bad credentials, unroutable, barred,
# out of credit, not enabled for HTTP, message too long, …) will fail again as it is.
TRANSIENT_STATUSES = frozenset({"1", "5", "10"})
DELIVERED = frozenset({"delivered"})
FAILED = frozenset({"expired", "failed", "rejected"})  # "accepted", "buffered", "unknown": still open


class VonageGateway:
    """Send one SMS with Vonage; map its status codes to sent, transient or permanent."""

    name = "vonage"
    settings_fields = (SettingField("api_key", "API key"),
                       SettingField("api_secret", "API secret", secret=True),
                       SettingField("sender", "Sender"), sms_http.BASE_URL_FIELD)

    def __init__(self, settings: dict[str, Any]) -> None:
        self.api_key = settings.get("api_key") or ""
        self.api_secret = settings.get("api_secret") or ""
        self.sender = (settings.get("sender") or "").lstrip("+")
        self.base_url = (settings.get("base_url") or BASE_URL).rstrip("/")

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
        status = str(refused[0].get("status"))
        # Once some part has left, a retry would send those parts twice.
        retry = status in TRANSIENT_STATUSES and len(refused) == len(parts)
        return Result(Outcome.TRANSIENT if retry else Outcome.PERMANENT,
                      detail=f"Vonage: {refused[0].get('error-text') or 'error'} (status {status})")


def parse_receipt(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Read a delivery receipt: (messageId, "delivered" | "failed", or None while it is on its way)."""
    provider_id = data.get("messageId") or data.get("message-id") or None
    status = str(data.get("status") or "").strip().lower()
    return provider_id, "delivered" if status in DELIVERED else "failed" if status in FAILED else None
