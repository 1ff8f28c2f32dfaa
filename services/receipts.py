"""Delivery receipts from Vonage and Clickatell: a secret callback URL per gateway, then sent →
delivered/failed.

Whatever reaches the callback URL is read, never trusted: a wrong secret is a 404, a wrong signature a
403 (where the provider signs), and any other body, however malformed, changes at most the status of the
one message it names and answers 204, so no body makes a 5xx and the provider stops retrying.
"""

import hashlib
import hmac
from typing import Any

from flask import current_app

from extensions import VaultError
from gateways import clickatell, vonage
from services import messaging, settings
from services.errors import Forbidden, NotFound

PARSERS = {"vonage": vonage.parse_receipt, "clickatell": clickatell.parse_receipt}


def _token(gateway: str, key: str | None = None) -> str:
    key = key or current_app.config["SECRET_KEY"]
    return hmac.new(key.encode(), f"provisio.receipts:{gateway}".encode(), hashlib.sha256).hexdigest()[:32]


def _known(gateway: str, token: str) -> bool:
    """Whether the token is the gateway's secret under SECRET_KEY or a retired key still in
    SECRET_KEY_FALLBACKS."""
    keys = [current_app.config["SECRET_KEY"], *(current_app.config.get("SECRET_KEY_FALLBACKS") or ())]
    # Compare with every key, so the time taken does not tell which one matched.
    return sum(hmac.compare_digest(token, _token(gateway, key)) for key in keys) > 0


def callback_urls(base_url: str) -> dict[str, str]:
    """The URL to give each provider for its delivery receipts; the secret in it is the credential
    every provider can present (Vonage can also sign: see check_signature)."""
    return {name: f"{base_url.rstrip('/')}/hooks/receipts/{name}/{_token(name)}" for name in PARSERS}


def check_secret(gateway: str, token: str) -> None:
    """Refuse a callback whose URL secret is not the gateway's."""
    if gateway not in PARSERS or not _known(gateway, token):
        raise NotFound("No such callback.")


def check_signature(gateway: str, data: dict[str, Any]) -> None:
    """Refuse an unsigned or wrongly signed receipt when the gateway's signature secret is configured."""
    if gateway != "vonage":
        return  # Clickatell's status callback carries no signature: the URL secret is all it has
    try:
        config = settings.for_gateways()["sms"].get("vonage") or {}
    except VaultError:  # refused, not dropped: Vonage retries until the secret is readable again
        raise Forbidden("The signature secret cannot be read with the configured keys.") from None
    secret = config.get("signature_secret")
    if secret and not vonage.signature_valid(data, secret, config.get("signature_method") or ""):
        raise Forbidden("The receipt's signature does not match.")


def apply(gateway: str, token: str, data: dict[str, Any]) -> bool:
    """Verify the callback's secret and signature, read the receipt and update the message it names.
    Returns whether a message changed (or will, when its send is recorded)."""
    check_secret(gateway, token)
    check_signature(gateway, data)
    receipt = PARSERS[gateway](data)
    if receipt is None:
        return False
    return messaging.record_receipt(gateway, receipt)
