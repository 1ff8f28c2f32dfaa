"""Console users, their group scope and their server-side sessions."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, UTCDateTime, enum_type, utcnow
from models.enums import Role

staff_groups = Table(
    "staff_groups",
    db.metadata,
    Column("staff_id", ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)


class StaffUser(UserMixin, TimestampMixin, db.Model):
    """A CSR, viewer or administrator of the console."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(enum_type(Role), default=Role.CSR)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # TOTP second factor: the secret (Fernet-encrypted) once confirmed, and the last time step
    # used, so a code works once.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None]

    groups: Mapped[list["Group"]] = relationship(  # noqa: F821
        secondary=staff_groups, order_by="Group.name"
    )
    sessions: Mapped[list["StaffSession"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    # Set by the user loader: which server-side session this request belongs to.
    session_id = None  # str | None; instance attribute, not a column
    # Set by the user loader: the client's address (the trusted hop, after ProxyFix) for audit rows.
    request_ip = None  # str | None; instance attribute, not a column

    def get_id(self) -> str | None:
        """Flask-Login keeps the server-side session id in the cookie, not the user id."""
        return self.session_id

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def can_write(self) -> bool:
        return self.role is not Role.VIEWER

    @property
    def group_ids(self) -> set[int]:
        return {group.id for group in self.groups}

    def __repr__(self) -> str:
        return f"<StaffUser {self.username} {self.role}>"


class StaffSession(db.Model):
    """A signed-in browser; revoking the row signs it out wherever the cookie is.

    The server decides how long it lives: idle since `last_seen_at` or old since `created_at`
    beyond the configured limits, it is refused (services.staff.load_session)."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the random id in the cookie: a copy of the database opens no session.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moved forward at most once a minute (a write per request would queue every page on SQLite).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))

    user: Mapped[StaffUser] = relationship(back_populates="sessions")
