"""Is the service healthy: the database answers, its schema is at the newest migration, a worker is
alive, and how the outbox, the accounts and the jobs stand (for /readyz and the metrics)."""

import functools
import os
import socket
from datetime import timedelta
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from models import Account, Job, Message, MessageStatus, WorkerBeat, utcnow

# A beat older than this is a worker that stopped long ago: its row goes.
FORGET_BEATS_AFTER = timedelta(days=1)


def worker_name() -> str:
    """This process's name among the workers: its host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def worker_seen(name: str) -> None:
    """Note that a worker is alive (its own transaction); forget workers gone for a day."""
    now = utcnow()
    db.session.merge(WorkerBeat(name=name, seen_at=now))
    db.session.execute(delete(WorkerBeat).where(WorkerBeat.seen_at < now - FORGET_BEATS_AFTER))
    db.session.commit()


def readiness() -> dict[str, Any]:
    """Every check with its finding; `ready` when the database answers at the newest schema.

    A stale worker or an old outbox message is reported, not fatal: a web node still serves pages and
    links without a worker, and a load balancer should not take every node out for it.
    """
    try:
        db.session.execute(text("SELECT 1"))
        at_head = _current_heads() == _script_heads()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"ready": False, "checks": {"database": {"ok": False, "error": type(exc).__name__}}}
    if not at_head:  # the tables read below may not exist yet
        return {"ready": False, "checks": {"database": {"ok": True}, "migrations": {"ok": False}}}
    config = current_app.config
    last_beat = db.session.scalar(select(func.max(WorkerBeat.seen_at)))
    beat_age = (utcnow() - last_beat).total_seconds() if last_beat else None
    oldest = oldest_queued_age()
    checks = {
        "database": {"ok": True},
        "migrations": {"ok": True},
        "worker": {"ok": beat_age is not None and beat_age <= config["WORKER_STALE_SECONDS"],
                   "last_seen_seconds_ago": _rounded(beat_age)},
        "outbox": {"ok": oldest is None or oldest <= config["OUTBOX_STALE_SECONDS"],
                   "queued": backlog(), "oldest_queued_seconds": _rounded(oldest)},
    }
    return {"ready": True, "checks": checks}


def backlog() -> int:
    """How many messages wait for the worker."""
    return db.session.scalar(select(func.count(Message.id)).where(Message.status == MessageStatus.QUEUED))


def oldest_queued_age() -> float | None:
    """Seconds since the oldest waiting message was queued; None when none waits."""
    oldest = db.session.scalar(select(func.min(Message.created_at))
                               .where(Message.status == MessageStatus.QUEUED))
    return (utcnow() - oldest).total_seconds() if oldest else None


def messages_by_state() -> dict[tuple[str, str], int]:
    """(status, gateway) -> how many messages."""
    rows = db.session.execute(select(Message.status, Message.gateway, func.count(Message.id))
                              .group_by(Message.status, Message.gateway))
    return {(status.value, gateway): count for status, gateway, count in rows}


def accounts_by_status() -> dict[str, int]:
    """Lifecycle status -> how many accounts (every group: this is the operator's view)."""
    rows = db.session.execute(select(Account.status, func.count(Account.id)).group_by(Account.status))
    return {status.value: count for status, count in rows}


def jobs_by_state() -> dict[tuple[str, str], tuple[int, int, int]]:
    """(kind, state) -> (jobs, items done, items in all), for the progress of what runs."""
    rows = db.session.execute(select(Job.kind, Job.state, func.count(Job.id),
                                     func.coalesce(func.sum(Job.done), 0),
                                     func.coalesce(func.sum(Job.total), 0)).group_by(Job.kind, Job.state))
    return {(kind, state.value): (count, done, total) for kind, state, count, done, total in rows}


def _current_heads() -> set[str]:
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


@functools.cache
def _script_heads_in(directory: str) -> frozenset[str]:
    return frozenset(ScriptDirectory(directory).get_heads())


def _script_heads() -> frozenset[str]:
    return _script_heads_in(os.path.join(current_app.root_path, current_app.extensions["migrate"].directory))


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 1) if seconds is not None else None
