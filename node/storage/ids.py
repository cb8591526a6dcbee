"""Row ids as URLs carry them: a page's cursor, a catalogue offer's number.

The tables' ``Integer`` primary keys hold 32 bits on PostgreSQL (int4), which refuses
to compare one with a larger number: a number from a URL is checked against
:data:`MAX_ROW_ID` before it reaches a query. Pure code, so that a route may check a
number without loading the schema.
"""

from __future__ import annotations

# The largest id an ``Integer`` primary key holds on PostgreSQL (int4): a cursor or id
# from a URL above it names no row.
MAX_ROW_ID = 2**31 - 1


def parse_cursor(raw: str, name: str) -> int:
    """A page's cursor from a URL: a row id, or 0 (before every row). Raises
    :class:`ValueError`, with a message for the client, for anything else."""
    # ASCII digits only: "²" is a digit to str.isdigit, not to int.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_ROW_ID):
        raise ValueError(f"{name} must be a row id, a whole number up to {MAX_ROW_ID}")
    return int(raw)


def is_row_id(value: int) -> bool:
    """Whether a number from a URL can be a row's id (1 up to :data:`MAX_ROW_ID`)."""
    return 0 < value <= MAX_ROW_ID
