"""SMS through the Orange SMS API: an OAuth2 client-credentials token from /oauth/v3/token, kept until
it expires, then one POST to /smsmessaging/v1/outbound/tel:+<sender>/requests.

Settings: `client_id`, `client_secret`, `sender_address` (the contract's number, +<country><number>),
`sender_name` (optional, as approved by Orange) and `base_url`.
"""

import hashlib
import threading
import time
from typing import Any
from urllib.parse import quote

import requests

from gateways import sms_http
from gateways.base import Outcome, Outgoing, Result, SettingField

BASE_URL = "https://api.orange.com"
RENEW_BEFORE_SECONDS = 60  # take a new token this long before Orange says the old one expires

# The outbox builds a gateway for every message, so tokens live here, per base URL and client:
# (base_url, client_id, digest of the secret) -> (access token, monotonic time it is good until).
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class OrangeGateway:
    """Send one SMS with Orange; map its HTTP answers to sent, transient or permanent."""

    name = "orange"
    default_rate = sms_http.DEFAULT_RATE  # the pages we found name no send rate
    settings_fields = (SettingField("client_id", "Client id"),
                       SettingField("client_secret", "Client secret", secret=True),
                       SettingField("sender_address", "Sender address (+country number)"),
                       SettingField("sender_name", "Sender name (optional)"),
                       *sms_http.shared_fields(default_rate))
    # Orange's SMS API pages we found name no longest message: the shared default stands.
    default_max_parts = sms_http.DEFAULT_MAX_PARTS

    def __init__(self, settings: dict[str, Any]) -> None:
        self.client_id = settings.get("client_id") or ""
        self.client_secret = settings.get("client_secret") or ""
        number = (settings.get("sender_address") or "").strip().removeprefix("tel:")
        self.sender = "tel:" + (number if number.startswith("+") else "+" + number)
        self.sender_name = settings.get("sender_name") or ""
        self.base_url = (settings.get("base_url") or BASE_URL).rstrip("/")
        self.max_parts = sms_http.max_parts(settings, self.default_max_parts)
        self.rate = sms_http.rate(settings, self.default_rate)
        secret = hashlib.sha256(self.client_secret.encode()).hexdigest()
        self._cache_key = (self.base_url, self.client_id, secret)

    def send(self, message: Outgoing) -> Result:
        """Hand the SMS to Orange, with a fresh token once if Orange no longer takes the kept one."""
        try:
            sms_http.check_international(message.recipient)
            response = self._post(message, self._token())
            if response.status_code == 401:  # expired or revoked early: nothing was sent, so one more try
                self._forget_token()
                response = self._post(message, self._token())
        except sms_http.ProviderError as exc:
            return exc.result
        body = sms_http.json_of(response)
        if 200 <= response.status_code < 300:
            resource = str(body.get("outboundSMSMessageRequest", {}).get("resourceURL") or "")
            return Result(Outcome.SENT, provider_id=resource.rstrip("/").rsplit("/", 1)[-1] or None)
        if not body:
            return sms_http.unexpected("Orange", response)
        return sms_http.refusal(response, f"Orange: {describe(body)} (HTTP {response.status_code})")

    def _post(self, message: Outgoing, token: str) -> requests.Response:
        request = {"address": "tel:" + message.recipient, "senderAddress": self.sender,
                   "outboundSMSTextMessage": {"message": message.body}}
        if self.sender_name:
            request["senderName"] = self.sender_name
        url = f"{self.base_url}/smsmessaging/v1/outbound/{quote(self.sender, safe='')}/requests"
        return sms_http.post("Orange", url, json={"outboundSMSMessageRequest": request},
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def _token(self) -> str:
        # One request at a time per process asks for a token; the others wait for it and reuse it.
        with _tokens_lock:
            kept = _tokens.get(self._cache_key)
            if kept is not None and kept[1] > time.monotonic():
                return kept[0]
            response = sms_http.post("Orange", f"{self.base_url}/oauth/v3/token",
                                     auth=(self.client_id, self.client_secret),
                                     data={"grant_type": "client_credentials"},
                                     headers={"Accept": "application/json"})
            body = sms_http.json_of(response)
            token = body.get("access_token")
            if response.status_code != 200 or not token:
                raise sms_http.ProviderError(Result(
                    sms_http.by_http_status(response.status_code),
                    detail=f"Orange refused a token: {describe(body) or response.reason} "
                           f"(HTTP {response.status_code})"))
            lifetime = int(body.get("expires_in") or 0)
            _tokens[self._cache_key] = (token, time.monotonic() + max(lifetime - RENEW_BEFORE_SECONDS, 0))
            return token

    def _forget_token(self) -> None:
        with _tokens_lock:
            _tokens.pop(self._cache_key, None)


def describe(body: dict[str, Any]) -> str:
    """Orange's own words from any of its three error shapes: OAuth, gateway, and OneAPI requestError."""
    errors = body.get("requestError")
    for kind, exception in (errors.items() if isinstance(errors, dict) else ()):
        if not isinstance(exception, dict):
            continue
        text = str(exception.get("text") or kind)
        variables = exception.get("variables") or []
        for index, value in enumerate([variables] if isinstance(variables, str) else variables, start=1):
            text = text.replace(f"%{index}", str(value))
        return f"{exception.get('messageId', kind)} {text}"
    if "code" in body and (words := [str(body[key]) for key in ("message", "description") if body.get(key)]):
        return f"{': '.join(words)} (code {body['code']})"
    if isinstance(body.get("error"), str):
        return f"{body['error']}: {body.get('error_description', '')}"
    # Any other shape: whatever words it carries ("Insufficient SMS bundle balance"), rather than none.
    return "; ".join(dict.fromkeys(_words(body)))[:300]


_WORD_KEYS = ("message", "description", "text", "error_description", "error", "detail", "details")


def _words(value: Any, depth: int = 0) -> list[str]:
    """The human sentences of an error body of unknown shape, in order, a few levels deep."""
    if depth > 3:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        keys = [key for key in _WORD_KEYS if key in value] or list(value)[:5]
        return [word for key in keys for word in _words(value[key], depth + 1)]
    if isinstance(value, list):
        return [word for item in value[:5] for word in _words(item, depth + 1)]
    return []
