"""SIP accounts, their SNOM access rules, status history, public keys and the words the search indexes."""

import re
import uuid
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, inspect
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship, validates

from extensions import db
from models.base import TimestampMixin, UTCDateTime, enum_type, utcnow
from models.enums import AccountType, LicenceState, RuleKind, Status
from models.registrar import TABLES as REGISTRAR_TABLES

# The search's old expression indexes on lower(…) (revision d5a7c3e9f104, dropped by 4f1c2a7d9e30);
# autogenerate leaves indexes with this prefix alone.
SEARCH_INDEX_PREFIX = "ix_accounts_lower_"
# The whole-value search fields, each kept beside its value in lower case ("<field>_folded").
FOLDED_FIELDS = ("username", "callerid", "email")
# The analysed search fields, as Lucene's text fields: their words are kept in account_terms.
TEXT_FIELDS = ("owner", "description")
# Lucene's StandardAnalyzer cuts a longer run into pieces of 255 characters too; it keeps index entries small.
MAX_WORD = 255
_RUNS = re.compile(r"[\w\u0300-\u036f]+")  # letters, digits and _, with the accents combined with letters


def fold(value: str | None) -> str:
    """The case-insensitive form of a search value, for every letter (the search folds its terms alike)."""
    return (value or "").lower()


def words(value: str | None) -> list[str]:
    """The terms of an analysed field, as Lucene's StandardAnalyzer makes them: runs of letters and digits
    (an underscore, a space, any punctuation separates two), folded."""
    terms = []
    for run in _RUNS.findall(value or ""):
        for word in run.split("_"):
            folded = fold(word)
            terms += [folded[start:start + MAX_WORD] for start in range(0, len(folded), MAX_WORD)]
    return terms


def term_rows(accounts: Iterable[tuple[int, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The account_terms rows of (id, values) pairs, for a Core insert of accounts (the CSV import's)."""
    return [{"account_id": account_id, "field": field, "position": position, "term": term}
            for account_id, values in accounts for field in TEXT_FIELDS
            for position, term in enumerate(words(values.get(field)))]


def _folded_default(field: str):
    """A column default folding `field`, for INSERTs that leave it out (the CSV import's bulk insert)."""
    return lambda context: fold(context.get_current_parameters().get(field))


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: everything but the search's hand-written expression indexes and the SIP
    server's tables (models/registrar.py, not Provisio's models)."""
    if type_ == "table" and name in REGISTRAR_TABLES:
        return False
    return not (type_ == "index" and name and name.startswith(SEARCH_INDEX_PREFIX))


class Account(TimestampMixin, db.Model):
    """One SIP account, PGSM softphone or SNOM desk phone."""

    __tablename__ = "accounts"
    __table_args__ = (
        # Keyset pagination walks id downwards inside a group or a status.
        Index("ix_accounts_group_id_id", "group_id", "id"),
        Index("ix_accounts_status_id", "status", "id"),
        # Plain columns, not lower(…) expressions: SQLite's own tools must agree with the index (a DBA's
        # integrity_check), and text_pattern_ops lets PostgreSQL answer LIKE 'prefix%' in any collation.
        *(Index(f"ix_accounts_{field}_folded", f"{field}_folded",
                postgresql_ops={f"{field}_folded": "text_pattern_ops"}) for field in FOLDED_FIELDS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable public id, carried by the activation file so a client replaces, never duplicates.
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_encrypted: Mapped[str] = mapped_column(Text)
    callerid: Mapped[str] = mapped_column(String(20), unique=True)
    secondary_callerid: Mapped[str | None] = mapped_column(String(20), unique=True)
    owner: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    account_type: Mapped[AccountType] = mapped_column(enum_type(AccountType), default=AccountType.PGSM)
    security_model: Mapped[str | None] = mapped_column(String(32))
    obfuscation: Mapped[bool] = mapped_column(default=True)
    obfuscation_key: Mapped[str] = mapped_column(String(32), default="9")
    keepalive: Mapped[bool] = mapped_column(default=False)
    mac_address: Mapped[str | None] = mapped_column(String(12), unique=True)
    # SHA-256 (hex) of the secret in the phone's settings URL; the secret itself is shown once.
    snom_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    snom_secret_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="RESTRICT"))
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="RESTRICT"), index=True
    )
    wizard: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Disabled by a CSR (as opposed to a wizard account waiting for activation): no link works.
    staff_disabled: Mapped[bool] = mapped_column(default=False)
    status: Mapped[Status] = mapped_column(enum_type(Status), default=Status.CREATED)
    status_channel: Mapped[str | None] = mapped_column(String(8))
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every older secure link dies when this moves (resend, rotate, disable, activate).
    link_version: Mapped[int] = mapped_column(default=0)
    # After "revoke all keys" the client may upload a key only once provisioned again.
    keys_locked: Mapped[bool] = mapped_column(default=False)
    licence_state: Mapped[LicenceState] = mapped_column(
        enum_type(LicenceState), default=LicenceState.UNUSED
    )
    licence_expires_on: Mapped[date | None]
    licence_device: Mapped[str | None] = mapped_column(String(128))
    # Set with the value (validates below, or the default on a Core insert); the search reads only these.
    username_folded: Mapped[str] = mapped_column(String(64), default=_folded_default("username"),
                                                 server_default="")
    callerid_folded: Mapped[str] = mapped_column(String(20), default=_folded_default("callerid"),
                                                 server_default="")
    email_folded: Mapped[str] = mapped_column(String(254), default=_folded_default("email"),
                                              server_default="")

    group: Mapped["Group"] = relationship(back_populates="accounts")  # noqa: F821
    profile: Mapped["Profile | None"] = relationship()  # noqa: F821
    rules: Mapped[list["AccessRule"]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="AccessRule.position"
    )
    status_events: Mapped[list["StatusEvent"]] = relationship(
        back_populates="account",
        cascade="all, delete-orphan",
        order_by="StatusEvent.id.desc()",
        passive_deletes=True,
    )
    public_keys: Mapped[list["PublicKey"]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )
    devices: Mapped[list["Device"]] = relationship(  # noqa: F821
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )
    messages: Mapped[list["Message"]] = relationship(  # noqa: F821
        back_populates="account", passive_deletes=True
    )
    terms: Mapped[list["AccountTerm"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    @validates(*FOLDED_FIELDS)
    def _fold(self, field: str, value: str | None) -> str | None:
        """Keep the folded copy of a search field in step with the value."""
        setattr(self, f"{field}_folded", fold(value))
        return value

    @validates(*TEXT_FIELDS)
    def _analyse(self, field: str, value: str | None) -> str | None:
        """Keep the words of an analysed search field in step with the value."""
        if inspect(self).dict.get(field) == value:
            return value
        session = object_session(self)
        # Loading the old words must not flush the half-made edit (a clash would surface here, not at commit).
        with session.no_autoflush if session is not None else nullcontext():
            kept = [term for term in self.terms if term.field != field]
        self.terms = kept + [AccountTerm(field=field, position=position, term=term)
                             for position, term in enumerate(words(value))]
        return value

    @property
    def is_snom(self) -> bool:
        return self.account_type is AccountType.SNOM

    @property
    def effective_profile(self) -> "Profile | None":  # noqa: F821
        """The account's own profile, else its group's."""
        return self.profile or self.group.profile

    @property
    def waiting_for_activation(self) -> bool:
        """A wizard account not yet activated and not disabled by staff: activating it enables it."""
        return self.wizard and not self.enabled and not self.staff_disabled

    @property
    def licence_holder(self) -> "Device | None":  # noqa: F821
        """The device the licence is bound to (licence_device holds its id), if it still exists."""
        return next((device for device in self.devices if str(device.id) == self.licence_device), None)

    @property
    def status_label(self) -> str:
        return self.status.label(self.status_channel)

    def rules_of(self, kind: RuleKind | str) -> list[str]:
        # `==`, not `is`: templates and views pass the plain strings "deny" and "permit".
        return [rule.network for rule in self.rules if rule.kind == kind]

    def __repr__(self) -> str:
        return f"<Account {self.username}>"


class AccountTerm(db.Model):
    """One word of an account's analysed search field (owner, description) at its position: the search's
    index of words, as Lucene's postings. Kept by Account._analyse, or by term_rows for a Core insert."""

    __tablename__ = "account_terms"
    __table_args__ = (
        # A word's accounts and positions, from the index alone (a phrase joins on them); text_pattern_ops
        # lets PostgreSQL answer LIKE 'prefix%' and the code-point order of ranges in any collation.
        Index("ix_account_terms_field_term", "field", "term", "account_id", "position",
              postgresql_ops={"term": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(16))
    position: Mapped[int]
    term: Mapped[str] = mapped_column(String(MAX_WORD))


class AccessRule(db.Model):
    """One SNOM deny or permit rule, `<ip>/<netmask>`."""

    __tablename__ = "access_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RuleKind] = mapped_column(enum_type(RuleKind))
    network: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(default=0)

    account: Mapped[Account] = relationship(back_populates="rules")


class StatusEvent(db.Model):
    """One change of an account's lifecycle status: what, when, by whom or what."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    status: Mapped[Status] = mapped_column(enum_type(Status))
    channel: Mapped[str | None] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="status_events")

    @property
    def label(self) -> str:
        return self.status.label(self.channel)


class PublicKey(db.Model):
    """An end-to-end messaging TLS public key uploaded by the account's client."""

    __tablename__ = "public_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    key_pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship(back_populates="public_keys")
