"""The outbox: one row per SMS or e-mail to one account, delivered by the worker."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, UTCDateTime, enum_type, utcnow
from models.enums import Channel, MessageKind, MessageStatus


class Message(TimestampMixin, db.Model):
    """A queued, sent, delivered or failed message. It holds no password; the row keeps the hash of the
    link's random part, and, encrypted and only until it is sent or given up, the random part itself and
    the text as first rendered with the signed link (services/delivery.py)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[MessageKind] = mapped_column(enum_type(MessageKind))
    channel: Mapped[Channel] = mapped_column(enum_type(Channel))
    recipient: Mapped[str] = mapped_column(String(254))
    gateway: Mapped[str] = mapped_column(String(32))
    link_version: Mapped[int]
    # The link's random part: its SHA-256 finds the message when the link is opened; the part itself,
    # encrypted with the vault's keys, stays only until the gateway accepts the message (a retry sends
    # the same link), then it is erased.
    link_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    link_nonce_encrypted: Mapped[str | None] = mapped_column(Text)
    link_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the activation that consumed it
    # The subject and body as first rendered (they carry the signed link), encrypted like the nonce and
    # erased with it: every try of a message sends the same text, and a template edit or a new signing
    # time between two tries changes nothing the phone gets.
    text_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(enum_type(MessageStatus), default=MessageStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    last_error: Mapped[str | None] = mapped_column(Text)
    # A double-clicked or retried send carries the same key and finds this row.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    requested_by: Mapped[str] = mapped_column(String(64))

    account: Mapped["Account | None"] = relationship(back_populates="messages")  # noqa: F821


class PendingReceipt(db.Model):
    """A delivery receipt that named no message we know yet: the provider can answer faster than the
    worker records the send. Recording the send applies it; one left unclaimed expires
    (services/messaging.py PENDING_RECEIPT_HOURS)."""

    __tablename__ = "pending_receipts"
    __table_args__ = (UniqueConstraint("gateway", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    provider_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # "delivered" or "failed"
    detail: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
