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
        return _STATUS_RANKS[self]

    def label(self, channel: str | None = None) -> str:
        """Human label; a sent status names its channel ("Installation SMS sent")."""
        if self in (Status.INSTALLATION_SENT, Status.ACTIVATION_SENT) and channel:
            word = "SMS" if channel == "sms" else "e-mail"
            return f"{self.value.split('_')[0].capitalize()} {word} sent"
        return self.value.replace("_", " ").capitalize()


_STATUS_RANKS = {status: rank for rank, status in enumerate(Status)}  # the landing page asks each time


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


class Platform(enum.StrEnum):
    """Where the end user opened the link; chooses the app build to offer."""

    IOS = "ios"
    ANDROID = "android"
    IPADOS = "ipados"
    WINDOWS = "windows"
    MACOS = "macos"
    LINUX = "linux"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"ios": "iPhone", "android": "Android", "ipados": "iPad", "windows": "Windows PC",
                "macos": "Mac", "linux": "Linux computer", "other": "device we do not know"}[self.value]

    @property
    def is_desktop(self) -> bool:
        """Not a phone or a tablet as far as we can tell: the page offers a QR code to continue on one."""
        return self.is_computer or self is Platform.OTHER

    @property
    def is_computer(self) -> bool:
        """A computer's browser, where the app rarely lives: Activate asks the person to confirm first."""
        return self in (Platform.WINDOWS, Platform.MACOS, Platform.LINUX)


class Channel(enum.StrEnum):
    """How a message travels."""

    SMS = "sms"
    EMAIL = "email"


class MessageKind(enum.StrEnum):
    """What a message offers: the install link, the activation link, or the single secure link."""

    INSTALL = "install"
    ACTIVATION = "activation"
    LINK = "link"
    PROVISIONING = "provisioning"  # the secure link by e-mail, for devices without a phone

    @property
    def sent_status(self) -> "Status":
        return Status.ACTIVATION_SENT if self is MessageKind.ACTIVATION else Status.INSTALLATION_SENT

    def channel_for(self, requested: Channel) -> Channel:
        """The channel a message of this kind travels by: a provisioning message is always an e-mail."""
        return Channel.EMAIL if self is MessageKind.PROVISIONING else requested


class MessageStatus(enum.StrEnum):
    """Where a message stands in the outbox."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # a newer send replaced it before it left: not a failure, never sent


class JobState(enum.StrEnum):
    """Where a background job (CSV import, bulk action) stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)
