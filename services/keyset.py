"""Keyset pagination: newest first by id, without OFFSET, so a page costs the same deep in a long list."""

from typing import Any

from sqlalchemy import Select

from extensions import db


def newest_first(query: Select, id_column: Any, *, before: int | None, page_size: int) -> tuple[list, int | None]:
    """One page of `query` below the cursor `before`; return its rows and the next page's cursor (or None)."""
    query = query.order_by(id_column.desc()).limit(page_size + 1)
    if before:
        query = query.where(id_column < before)
    rows = list(db.session.scalars(query))
    return rows[:page_size], rows[page_size - 1].id if len(rows) > page_size else None
