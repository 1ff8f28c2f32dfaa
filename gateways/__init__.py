"""Message gateways: one module per provider behind `send(message) -> Result`."""

from gateways.base import Outgoing, Result
from gateways.mail_smtp import SmtpGateway

__all__ = ["Outgoing", "Result", "SmtpGateway", "for_settings"]


def for_settings(channel: str, settings: dict) -> "SmtpGateway":
    """Return the configured gateway of a channel."""
    if channel == "email":
        return SmtpGateway(settings["mail"])
    raise LookupError("No SMS gateway is configured yet.")
