"""What every gateway takes and returns, and how it declares the settings it reads."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Outcome(StrEnum):
    """How a provider answered."""

    SENT = "sent"            # accepted by the provider
    TRANSIENT = "transient"  # try again later (timeout, 4xx, 5xx from the provider)
    PERMANENT = "permanent"  # will never work as it is (bad address, bad credentials)


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready for a provider."""

    recipient: str
    subject: str
    body: str


@dataclass(frozen=True)
class Result:
    """A provider's answer, with its own words kept for the CSR."""

    outcome: Outcome
    provider_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class SettingField:
    """One setting a gateway reads: the console's settings form asks for it, the settings service keeps it.

    A secret is stored encrypted (as `<key>_encrypted`) and never shown again; a blank one keeps the
    stored secret, a blank plain value is not stored (the gateway's default applies). `kind` says what
    the form checks: text, a URL, a host name, a port, one of `choices`, a check box or a sender address.
    """

    key: str
    label: str
    secret: bool = False
    kind: Literal["text", "url", "host", "port", "choice", "check", "address"] = "text"
    required: bool = False
    max_length: int = 256
    choices: tuple[tuple[str, str], ...] = ()
    description: str = ""
