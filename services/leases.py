"""Leases on queue rows: several workers take rows of one table (the outbox, the jobs) and none takes a
row another one holds. A lease runs out, so the row of a worker that died is taken again."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update

from extensions import db
from models import Job, Message


def claim(model: type[Job] | type[Message], *, due: ColumnElement[bool], order_by: tuple[Any, ...],
          lease: timedelta, now: datetime, **values: Any) -> int | None:
    """Take the first `due` row of `model` in `order_by` under a lease, atomically, and set `values` on it;
    return its id, or None when no row is due. Commits."""
    ids = claim_many(model, due=due, order_by=order_by, lease=lease, now=now, limit=1, **values)
    return ids[0] if ids else None


def claim_many(model: type[Job] | type[Message], *, due: ColumnElement[bool], order_by: tuple[Any, ...],
               lease: timedelta, now: datetime, limit: int, **values: Any) -> list[int]:
    """Take up to `limit` first `due` rows of `model` in `order_by` under a lease, atomically, in one
    statement, and set `values` on them; return their ids (none when no row is due). Commits."""
    free = or_(model.lease_until.is_(None), model.lease_until < now)
    first = (select(model.id).where(due, free).order_by(*order_by).limit(limit)
             .with_for_update(skip_locked=True))  # PostgreSQL: the others pass on; SQLite serialises writers
    ids = db.session.scalars(
        # Checked again on the row itself: another worker may have taken it since the subquery read it.
        update(model).where(model.id.in_(first), due, free)
        .values(lease_until=now + lease, attempts=model.attempts + 1, **values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return list(ids)
