"""Message gateways: one module per provider behind `send(message) -> Result`."""

from typing import Any, Protocol

from gateways.aspsms import AspsmsGateway
from gateways.base import Outgoing, Result, SettingField
from gateways.clickatell import ClickatellGateway
from gateways.mail_smtp import SmtpGateway
from gateways.orange import OrangeGateway
from gateways.vonage import VonageGateway

__all__ = ["SMS_GATEWAYS", "Gateway", "SmsGateway", "Outgoing", "Result", "SmtpGateway", "for_settings"]


class Gateway(Protocol):
    """What every gateway offers the outbox, and the settings it reads (the console's form asks for them)."""

    name: str
    settings_fields: tuple[SettingField, ...]
    rate: float | None  # messages per second every worker together may send through it; None: any

    def __init__(self, settings: dict[str, Any]) -> None: ...

    def send(self, message: Outgoing) -> Result: ...


class SmsGateway(Gateway, Protocol):
    """An SMS gateway also knows the longest SMS its account may send."""

    default_max_parts: int  # in parts, when the settings name none
    max_parts: int          # in parts, as these settings allow
    default_rate: float     # messages per second, when the settings name none


# The name stored in settings["sms"]["gateway"] (and on every message) -> its gateway.
SMS_GATEWAYS: dict[str, type[SmsGateway]] = {
    AspsmsGateway.name: AspsmsGateway,
    OrangeGateway.name: OrangeGateway,
    ClickatellGateway.name: ClickatellGateway,
    VonageGateway.name: VonageGateway,
}


def for_settings(channel: str, settings: dict[str, Any]) -> Gateway:
    """Return the configured gateway of a channel."""
    if channel == "email":
        return SmtpGateway(settings["mail"])
    sms = settings.get("sms") or {}
    name = sms.get("gateway")
    if channel == "sms" and name in SMS_GATEWAYS:
        return SMS_GATEWAYS[name](sms.get(name) or {})
    if channel == "sms" and name:
        raise LookupError(f"Unknown SMS gateway {name!r}: choose one of {', '.join(sorted(SMS_GATEWAYS))}.")
    raise LookupError("No SMS gateway is configured yet.")
