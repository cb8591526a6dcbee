"""INSERT ... ON CONFLICT DO NOTHING on both engines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_ignore(
    conn: Connection, table: Table, values: Mapping[str, Any], *, conflict: str
) -> bool:
    """Insert ``values`` unless a row with the same ``conflict`` column exists.

    Returns whether a row was inserted. A duplicate is not an error: it is how a
    replayed activity or a resent delivery becomes harmless.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[conflict])
        .returning(table.c[conflict])
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for a skipped insert.
    return conn.execute(statement).first() is not None
