"""Write audit events inside the caller's transaction."""

from typing import Any

from sqlalchemy import func, select

from extensions import db
from models import AuditEvent, StaffUser
from services import keyset


def record(
    actor: StaffUser | str,
    action: str,
    target: Any = None,
    *,
    ip: str | None = None,
    outcome: str = "ok",
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the session; it commits with the change it describes."""
    event = AuditEvent(**values(actor, action, target, ip=ip, outcome=outcome, **detail))
    db.session.add(event)
    return event


def values(actor: StaffUser | str, action: str, target: Any = None, *, ip: str | None = None,
           outcome: str = "ok", **detail: Any) -> dict[str, Any]:
    """The columns of an audit event, for record() or for a Core INSERT on a hot path.

    A staff actor signed in over HTTP carries its request's client address; an explicit `ip` wins."""
    if ip is None and not isinstance(actor, str):
        ip = getattr(actor, "request_ip", None)
    row = {"actor": actor if isinstance(actor, str) else actor.username, "action": action, "ip": ip,
           "outcome": outcome, "detail": detail, "target_type": None, "target_id": None, "target": None}
    if target is not None:
        row.update(target_type=target.__tablename__.rstrip("s"), target_id=target.id,
                   target=getattr(target, "username", None) or getattr(target, "name", None))
    return row


def for_target(target: Any, limit: int = 50) -> list[AuditEvent]:
    """Return the newest audit events about one object."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == target.__tablename__.rstrip("s"),
                   AuditEvent.target_id == target.id)
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )


def search(*, action: str = "", actor: str = "", outcome: str = "", before: keyset.Cursor = None,
           page_size: int = 100) -> tuple[list[AuditEvent], int | None]:
    """Return one newest-first page of the audit log, filtered by action prefix, actor and outcome."""
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(func.lower(AuditEvent.actor) == actor.lower())
    if outcome:
        query = query.where(AuditEvent.outcome == outcome.strip().lower())
    return keyset.newest_first(query, AuditEvent.id, before=before, page_size=page_size)


def actions() -> list[str]:
    """Return every action name that occurs in the log."""
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
