"""The outbox: one row per SMS or e-mail to one account, delivered by the worker."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, UTCDateTime, enum_type, utcnow
from models.enums import Channel, MessageKind, MessageStatus


class Message(TimestampMixin, db.Model):
    """A queued, sent, delivered or failed message. It holds no token and no password:
    the worker builds the link from the account and `link_version` when it sends."""

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
