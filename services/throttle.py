"""Rate limits kept in the database: one atomic upsert per hit, so a limit holds exactly under
concurrent requests, across worker processes and restarts, on SQLite and PostgreSQL alike."""

import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import case, delete
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import RateCounter, utcnow

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def hit(key: str, *, window_seconds: int, now: datetime | None = None) -> int:
    """Count one hit of `key` and return how many it has in its current window, this one included.

    Runs in a short transaction of its own, committed at once, so a hit counts even when the caller
    rolls its own work back. Call it before the caller's session writes: on SQLite a second writer
    would wait for the first. The caller compares the count with its limit: above it, refuse.
    """
    now = now or utcnow()
    table = RateCounter.__table__
    expired = table.c.window_start <= now - timedelta(seconds=window_seconds)
    with db.engine.begin() as connection:
        statement = _INSERT[connection.dialect.name](table).values(key=key[:160], window_start=now, count=1)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": case((expired, 1), else_=table.c.count + 1),
                  "window_start": case((expired, now), else_=table.c.window_start)},
        ).returning(table.c.count)
        return connection.execute(statement).scalar_one()


def over_limit(key: str, *, limit: int, window_seconds: int, crossing: Callable[[], None]) -> bool:
    """Count one hit of `key`; True when it is past `limit`, so the caller refuses it.

    `crossing` runs once per window, for the hit that crosses the limit: its one audit row stands for
    every refused hit after it, so a flood leaves one row, not one a request.
    """
    count = hit(key, window_seconds=window_seconds)
    if count == limit + 1:
        crossing()
    return count > limit


def client_key(purpose: str, ip: str | None) -> str:
    """The counter key of a client address for one purpose; IPv6 per /64, which one host commonly owns."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return f"{purpose}:{ip}"
    if address.version == 6:
        return f"{purpose}:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"{purpose}:{address}"


def reset(key: str) -> None:
    """Forget a key's hits (a right password ends the count of wrong ones)."""
    with db.engine.begin() as connection:
        connection.execute(delete(RateCounter).where(RateCounter.key == key[:160]))


def prune(*, older_than_seconds: int, now: datetime | None = None) -> int:
    """Delete counters whose window ended long ago; return how many went (the worker calls it)."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_seconds)
    with db.engine.begin() as connection:
        return connection.execute(delete(RateCounter).where(RateCounter.window_start < cutoff)).rowcount
