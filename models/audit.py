"""The append-only audit log."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from extensions import db
from models.base import UTCDateTime, utcnow


class AuditEvent(db.Model):
    """One staff or security-relevant action. Rows are written once and never changed."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action_created_at", "action", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Labels, not foreign keys: the trail outlives the staff user and the account.
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None]
    target: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    # What came of the action: "ok", or why it was refused or failed ("refused", "throttled" …).
    outcome: Mapped[str] = mapped_column(String(32), default="ok", server_default="ok")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# On the sessions of db.session only, not on every Session of the process.
@event.listens_for(db.session, "before_flush")
def _audit_is_append_only(session: Session, _context, _instances) -> None:
    """Refuse any change to a written audit row."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent):
            raise PermissionError("audit events are append-only")
