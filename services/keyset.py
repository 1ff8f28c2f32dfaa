"""Keyset pagination: newest first by id, without OFFSET, so a page costs the same deep in a long list."""

from typing import Any

from sqlalchemy import Select

from extensions import db
from services.errors import Invalid

# Ids are INTEGER: 32 bits on PostgreSQL (a larger parameter is 'integer out of range'), 64 on SQLite (past
# that its driver overflows). A cursor or a path id beyond the smaller of the two is no id at all.
MAX_ID = 2**31 - 1
Cursor = int | str | None  # a cursor as a caller has it: an id, the query string's text, or none


class BadCursor(Invalid):
    """The page cursor (`?before=`) is no id this list can have."""


def cursor(raw: Cursor) -> int | None:
    """Read a page cursor: None when absent, else an id from 1 to MAX_ID; anything else raises BadCursor."""
    if raw is None or raw == "":
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, str) and not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise BadCursor("This page link is broken: 'before' must be a positive whole number. "
                        "Go back to the first page.")
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise BadCursor(f"This page link is broken: 'before' must be between 1 and {MAX_ID}. "
                        "Go back to the first page.")
    return value


def newest_first(query: Select, id_column: Any, *, before: Cursor, page_size: int) -> tuple[list, int | None]:
    """One page of `query` below the cursor `before` (checked by `cursor`).

    Return its rows and the next cursor.
    """
    query = query.order_by(id_column.desc()).limit(page_size + 1)
    if (below := cursor(before)) is not None:
        query = query.where(id_column < below)
    rows = list(db.session.scalars(query))
    return rows[:page_size], rows[page_size - 1].id if len(rows) > page_size else None
