"""Enumerations shared by models, services and templates."""

import enum


class Role(enum.StrEnum):
    """What a staff user may do."""

    ADMIN = "admin"
    CSR = "csr"
    VIEWER = "viewer"


class AccountType(enum.StrEnum):
    """PGSM is the softphone client; SNOM is a desk phone."""

    PGSM = "pgsm"
    SNOM = "snom"

    @property
    def label(self) -> str:
        return self.value.upper()


class Status(enum.StrEnum):
    """Lifecycle of an account, in order."""

    CREATED = "created"
    INSTALLATION_SENT = "installation_sent"
    INSTALLED = "installed"
    ACTIVATION_SENT = "activation_sent"
    ACTIVATED = "activated"
    CONNECTED = "connected"

    @property
    def rank(self) -> int:
        return list(Status).index(self)

    def label(self, channel: str | None = None) -> str:
        """Human label; a sent status names its channel ("Installation SMS sent")."""
        if self in (Status.INSTALLATION_SENT, Status.ACTIVATION_SENT) and channel:
            word = "SMS" if channel == "sms" else "e-mail"
            return f"{self.value.split('_')[0].capitalize()} {word} sent"
        return self.value.replace("_", " ").capitalize()


class LicenceState(enum.StrEnum):
    """Where the account's licence stands."""

    UNUSED = "unused"
    VALID = "valid"
    BLOCKED = "blocked"
    CLEARED = "cleared"


class RuleKind(enum.StrEnum):
    """A SNOM access rule denies or permits a network."""

    DENY = "deny"
    PERMIT = "permit"
