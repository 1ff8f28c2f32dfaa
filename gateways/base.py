"""What every gateway takes and returns, and how it declares the settings it reads."""

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Outcome(StrEnum):
    """How a provider answered."""

    SENT = "sent"            # accepted by the provider
    TRANSIENT = "transient"  # try again later (timeout, 4xx, 5xx from the provider)
    THROTTLED = "throttled"  # sent too fast: the provider asks us to wait; a try that does not count
    PERMANENT = "permanent"  # will never work as it is (bad address, bad credentials)


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready for a provider."""

    recipient: str
    # They carry the signed link: never in a repr, so never in a traceback's or a log line's either.
    subject: str = field(repr=False)
    body: str = field(repr=False)


@dataclass(frozen=True)
class Result:
    """A provider's answer, with its own words kept for the CSR."""

    outcome: Outcome
    provider_id: str | None = None
    detail: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait, when it named a wait


@dataclass(frozen=True)
class SettingField:
    """One setting a gateway reads: the console's settings form asks for it, the settings service keeps it.

    A secret is stored encrypted (as `<key>_encrypted`) and never shown again; a blank one keeps the
    stored secret, a blank plain value is not stored (the gateway's default applies). `kind` says what
    the form checks: text, a URL, a host name, a port, a count (1-255), a rate (1-10,000 a second), one of
    `choices`, a check box or a sender address.
    """

    key: str
    label: str
    secret: bool = False
    kind: Literal["text", "url", "host", "port", "count", "rate", "choice", "check", "address"] = "text"
    required: bool = False
    max_length: int = 256
    choices: tuple[tuple[str, str], ...] = ()
    description: str = ""
    # The provider's own rule for the value (a sender's length, say): returns it normalised or raises
    # ValueError with a sentence for the admin. The form and the settings service both apply it.
    check: Callable[[str], str] | None = None


@dataclass(frozen=True)
class Receipt:
    """What a provider's delivery receipt says: its message id, "delivered", "failed" or None while the
    message is still on its way, and the provider's own words for the CSR."""

    provider_id: str
    status: Literal["delivered", "failed"] | None
    detail: str = ""


PROVIDER_ID_MAX = 128  # the column that keeps a provider's message id (models/message.py)


def field_text(data: Any, *keys: str, limit: int = 200) -> str:
    """The first of `keys` in a receipt that holds a short string or number, stripped; "" otherwise.

    A receipt is whatever reached a public URL: a list, a huge number or a nested object is not a value
    the provider documents, so it is read as absent rather than trusted or converted.
    """
    if not isinstance(data, dict):
        return ""
    for key in keys:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = value.strip() if isinstance(value, str) else str(value) if abs(value) < 10**9 else ""
        if text and len(text) <= limit:
            return text
    return ""
