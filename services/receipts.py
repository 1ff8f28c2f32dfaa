"""Delivery receipts from Vonage and Clickatell.

A secret callback URL per gateway, then sent → delivered/failed.
"""

import hashlib
import hmac
from typing import Any

from flask import current_app

from gateways import clickatell, vonage
from services import messaging
from services.errors import NotFound

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
    """The URL to give each provider for its delivery receipts; the secret in it is the only credential
    these providers let a receiver check."""
    return {name: f"{base_url.rstrip('/')}/hooks/receipts/{name}/{_token(name)}" for name in PARSERS}


def apply(gateway: str, token: str, data: dict[str, Any]) -> bool:
    """Verify the callback's secret, parse the receipt and update the message; unknown ids change nothing."""
    if gateway not in PARSERS or not _known(gateway, token):
        raise NotFound("No such callback.")
    provider_id, status = PARSERS[gateway](data)
    if not provider_id or status is None:
        return False
    return messaging.record_receipt(gateway, str(provider_id), status)
