"""The client installation bound to an account when it activates."""

from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, String, and_
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import UTCDateTime, enum_type, utcnow
from models.enums import Platform


class Device(db.Model):
    """A phone, tablet or desktop that received an account's activation file."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the bearer credential in the activation file; the credential itself is never stored.
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[Platform] = mapped_column(enum_type(Platform))
    app_version: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    account: Mapped["Account"] = relationship(back_populates="devices")  # noqa: F821

    @property
    def platform_name(self) -> str | None:
        """What the device is, in words, when its User-Agent told (None: the console shows no guess)."""
        return self.platform.label if self.platform is not Platform.OTHER else None

    @classmethod
    def heard_since(cls, moment: datetime) -> ColumnElement[bool]:
        """A live device whose app has called in (a heartbeat) since `moment`: an activation alone, which
        sets first_seen and last_seen to one moment, is not a connected client."""
        return and_(cls.last_seen >= moment, cls.last_seen > cls.first_seen, cls.revoked_at.is_(None))
