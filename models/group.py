"""Groups of accounts and the provisioning profiles attached to them."""

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin


class Profile(TimestampMixin, db.Model):
    """Named settings the activation file carries: hostnames, transport, options, re-fetch."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    sip_host: Mapped[str] = mapped_column(String(253))
    provisioning_host: Mapped[str] = mapped_column(String(253))
    transport: Mapped[str] = mapped_column(String(8), default="tls")
    sip_port: Mapped[int | None]  # None: the transport's standard port (services/activation.py)
    refetch_hours: Mapped[int] = mapped_column(default=24)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    groups: Mapped[list["Group"]] = relationship(back_populates="profile")

    def __str__(self) -> str:
        return self.name


class Group(TimestampMixin, db.Model):
    """A customer company or department: accounts, a default profile, the CSRs who serve it."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    profile_id: Mapped[int | None] = mapped_column(
        ForeignKey("profiles.id", ondelete="RESTRICT"), index=True
    )

    profile: Mapped[Profile | None] = relationship(back_populates="groups")
    accounts: Mapped[list["Account"]] = relationship(back_populates="group")  # noqa: F821

    def __str__(self) -> str:
        return self.name
