"""SMS through the ASPSMS JSON API: one POST of the message to SendSimpleTextSMS.

Settings: `userkey` (the UserKey, sent as UserName), `password` (the API password), `originator`
(up to 11 letters and digits, or an unlocked phone number), `max_parts` and `base_url`.
"""

from typing import Any

from gateways import sms_http
from gateways.base import Outcome, Outgoing, Result, SettingField

BASE_URL = "https://json.aspsms.com"
# ASPSMS's StatusCode 1 is OK; of its error codes only these are worth another try:
# 2 connect failed, 6 time out, 7 transmission error, 24 service temporarily not available.
TRANSIENT_CODES = frozenset({"2", "6", "7", "24"})


class AspsmsGateway:
    """Send one SMS with ASPSMS; map its StatusCode to sent, transient or permanent."""

    name = "aspsms"
    default_rate = sms_http.DEFAULT_RATE  # the pages we found name no send rate
    settings_fields = (SettingField("userkey", "Userkey"),
                       SettingField("password", "API password", secret=True),
                       SettingField("originator", "Originator", check=sms_http.check_originator("ASPSMS")),
                       *sms_http.shared_fields(default_rate))
    # ASPSMS's public API pages we found name no longest message: the shared default stands.
    default_max_parts = sms_http.DEFAULT_MAX_PARTS

    def __init__(self, settings: dict[str, Any]) -> None:
        self.userkey = settings.get("userkey") or ""
        self.password = settings.get("password") or ""
        self.originator = settings.get("originator") or ""
        self.base_url = (settings.get("base_url") or BASE_URL).rstrip("/")
        self.max_parts = sms_http.max_parts(settings, self.default_max_parts)
        self.rate = sms_http.rate(settings, self.default_rate)

    def send(self, message: Outgoing) -> Result:
        """Hand the SMS to ASPSMS."""
        payload = {"UserName": self.userkey, "Password": self.password, "Recipients": [message.recipient],
                   "MessageText": message.body}
        if self.originator:
            payload["Originator"] = self.originator
        try:
            sms_http.check_international(message.recipient)
            response = sms_http.post("ASPSMS", f"{self.base_url}/SendSimpleTextSMS", json=payload)
        except sms_http.ProviderError as exc:
            return exc.result
        body = sms_http.json_of(response)
        if "StatusCode" not in body:
            return sms_http.unexpected("ASPSMS", response)
        code, info = str(body["StatusCode"]), str(body.get("StatusInfo") or "")
        if code == "1":
            # SendSimpleTextSMS answers no message id: ASPSMS's delivery reports are not used.
            return Result(Outcome.SENT)
        outcome = Outcome.TRANSIENT if code in TRANSIENT_CODES else Outcome.PERMANENT
        return Result(outcome, detail=f"ASPSMS: {info or 'error'} (StatusCode {code})")
