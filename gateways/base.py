"""What every gateway takes and returns."""

from dataclasses import dataclass
from enum import StrEnum


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
