"""Each gateway's send pace, shared by every sender thread of every worker process.

A sender reserves the gateway's next free slot with one atomic upsert (the row's lock orders concurrent
senders, on SQLite and PostgreSQL alike) and waits for it, so however many threads and processes send,
a gateway gets at most `rate` messages a second. The slots are kept on the database's clock: workers on
two hosts share them even when the hosts' clocks differ. A provider that asks us to slow down pushes every
later slot past the wait it named (`hold`).
"""

import threading
from collections.abc import Callable

from sqlalchemy import ColumnElement, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import GatewayPace

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# Seconds since the epoch, on the database's clock.
_NOW = {"postgresql": literal_column("extract(epoch from clock_timestamp())"),
        "sqlite": literal_column("((julianday('now') - 2440587.5) * 86400.0)")}
_GREATEST = {"postgresql": func.greatest, "sqlite": func.max}  # SQLite's max() of several arguments


def turn(gateway: str, rate: float) -> float:
    """Reserve the gateway's next send slot; return how many seconds from now it starts (0 when free)."""
    interval = 1.0 / rate
    return _move(gateway, lambda greatest, now, slot: greatest(slot, now) + interval, reserved=interval)


def hold(gateway: str, seconds: float) -> None:
    """No send through the gateway for `seconds` from now (the provider asked): later slots start after."""
    _move(gateway, lambda greatest, now, slot: greatest(slot, now + seconds), reserved=0.0)


def wait_turn(gateway: str, rate: float | None, stop: threading.Event) -> bool:
    """Wait for the gateway's next slot (at once when it has no rate); False when `stop` was set before
    or meanwhile: the slot is given up and nothing may be sent."""
    delay = turn(gateway, rate) if rate else 0.0
    return not stop.wait(delay) if delay > 0 else not stop.is_set()


def _move(gateway: str, moved: Callable[..., ColumnElement], *, reserved: float) -> float:
    """Set the gateway's next slot to `moved(greatest, now, slot)` in one statement (a new gateway's slot
    counts as now); return in how many seconds the reserved slot, the `reserved` seconds before the
    new next slot, starts."""
    table = GatewayPace.__table__
    with db.engine.begin() as connection:
        dialect = connection.dialect.name
        greatest, now = _GREATEST[dialect], _NOW[dialect]
        statement = _INSERT[dialect](table).values(gateway=gateway, next_slot=moved(greatest, now, now))
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.gateway], set_={"next_slot": moved(greatest, now, table.c.next_slot)},
        ).returning(table.c.next_slot - reserved - now)
        return max(0.0, float(connection.execute(statement).scalar_one()))
