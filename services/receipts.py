"""Delivery receipts from Vonage and Clickatell: a secret callback URL per gateway, then sent → delivered/failed."""

import hashlib
import hmac
from typing import Any

from flask import current_app

from gateways import clickatell, vonage
from services import messaging
from services.errors import NotFound

PARSERS = {"vonage": vonage.parse_receipt, "clickatell": clickatell.parse_receipt}


def _token(gateway: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"provisio.receipts:{gateway}".encode(), hashlib.sha256).hexdigest()[:32]


def callback_urls(base_url: str) -> dict[str, str]:
    """The URL to give each provider for its delivery receipts; the secret in it is the only credential
    these providers let a receiver check."""
    return {name: f"{base_url.rstrip('/')}/hooks/receipts/{name}/{_token(name)}" for name in PARSERS}


def apply(gateway: str, token: str, data: dict[str, Any]) -> bool:
    """Verify the callback's secret, parse the receipt and update the message; unknown ids change nothing."""
    if gateway not in PARSERS or not hmac.compare_digest(token, _token(gateway)):
        raise NotFound("No such callback.")
    provider_id, status = PARSERS[gateway](data)
    if not provider_id or status is None:
        return False
    return messaging.record_receipt(gateway, str(provider_id), status)
