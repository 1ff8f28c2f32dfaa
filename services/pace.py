"""Each gateway's send pace, shared by every sender thread of every worker process.

A worker process reserves the gateway's next free slots with one atomic upsert (the row's lock orders
concurrent reservations, on SQLite and PostgreSQL alike), about BLOCK_SECONDS of them at a time, and hands
them to its sender threads in turn; each waits for its own. However many threads and processes send, a
gateway gets at most `rate` messages a second. The slots are kept on the database's clock: workers on two
hosts share them even when the hosts' clocks differ. A provider that asks us to slow down pushes every
later slot past the wait it named (`hold`).
"""

import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models import GatewayPace

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
# Seconds since the epoch, on the database's clock.
_NOW = {"postgresql": literal_column("extract(epoch from clock_timestamp())"),
        "sqlite": literal_column("((julianday('now') - 2440587.5) * 86400.0)")}
_GREATEST = {"postgresql": func.greatest, "sqlite": func.max}  # SQLite's max() of several arguments
# Slots are this much further apart than the rate alone needs. A provider counts arrivals: paced exactly
# at its limit, messages that the network delays unevenly cross it again and again (a test at 5/s saw
# one throttled answer every six messages); 5 % apart they cross it only on a delay of 50 ms a second.
HEADROOM = 0.05
# A process reserves this many seconds of a gateway's slots at once (at least one slot): at a high rate one
# upsert serves many sends; a slot the process does not use in time is lost, never given twice.
BLOCK_SECONDS = 0.1


def interval(rate: float) -> float:
    """Seconds between two slots of a gateway sending `rate` messages a second."""
    return (1.0 + HEADROOM) / rate


def turn(gateway: str, rate: float, count: int = 1) -> float:
    """Reserve the gateway's next `count` send slots; return how many seconds from now the first starts
    (0 when free)."""
    length = interval(rate) * count
    return _move(gateway, lambda greatest, now, slot: greatest(slot, now) + length, reserved=length)


def hold(gateway: str, seconds: float) -> None:
    """No send through the gateway for `seconds` from now (the provider asked): later slots start after,
    and this process gives up the slots it holds."""
    _move(gateway, lambda greatest, now, slot: greatest(slot, now + seconds), reserved=0.0)
    with _lock:
        _held.pop(gateway, None)


def next_turn(gateway: str, rate: float | None, longest: float = math.inf) -> float:
    """Take this thread's next slot of the gateway; return in how many seconds it starts (0: now, and
    always for a gateway with no rate). A slot not used at its time is lost. A slot further than
    `longest` seconds away is not taken (its delay is returned): the caller sends nothing until then."""
    return max(0.0, _next_slot(gateway, rate, longest) - time.monotonic()) if rate else 0.0


def forget() -> None:
    """Forget this process's reserved slots: the database's were emptied (the tests do, between tests)."""
    with _lock:
        _held.clear()


# This process's reserved slots of each gateway: (the next one, on time.monotonic(), and how many are left).
_held: dict[str, tuple[float, int]] = {}
_lock = threading.Lock()


def _next_slot(gateway: str, rate: float, longest: float = math.inf) -> float:
    """The time.monotonic() of this process's next slot of the gateway; reserves a block when none is left,
    unless the next free one is more than `longest` seconds away (then nothing is taken)."""
    step = interval(rate)
    with _lock:
        now = time.monotonic()
        at, left = _held.get(gateway, (0.0, 0))
        if (behind := now - at) > 0:  # slots whose time has passed are lost, never bunched up
            missed = math.ceil(behind / step)
            at, left = at + missed * step, left - missed
        if left > 0 and at - now > longest:
            return at
        if left <= 0:
            if (ahead := _ahead(gateway)) > longest:
                return now + ahead  # a held gateway: a slot taken now would only push every later one out
            left = max(1, int(rate * BLOCK_SECONDS))
            start = time.monotonic() + turn(gateway, rate, left)
            # Not a little before the end of the last block: the two clocks' offset, read through a
            # statement's latency (and SQLite's millisecond clock), differs a little between reservations.
            at = at if 0 < at - start < step else start
        _held[gateway] = (at + step, left - 1)
        return at


def _ahead(gateway: str) -> float:
    """Seconds until the gateway's next free slot (0 when it is free now)."""
    table = GatewayPace.__table__
    with db.engine.connect() as connection:
        ahead = connection.execute(select(table.c.next_slot - _NOW[connection.dialect.name])
                                   .where(table.c.gateway == gateway)).scalar()
    return max(0.0, float(ahead or 0.0))


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
